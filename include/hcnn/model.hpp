// hcnn/model.hpp — Model<Net, Backend, T>: a network type instantiated with its parameters.
//
// The network type stays empty; a Model owns the bound layers (with their parameters and
// gradients), one activation tensor per layer output and two gradient buffers that the
// backward pass alternates between (but across layers that work in place). Buffers grow on
// the first batch of a given size and are reused afterwards, so a training loop does not allocate. Forward and backward are folds over
// the layer tuple: no virtual calls and no runtime graph.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "backend/cpu/denormals.hpp"
#include "backend/cpu/simd.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/filler.hpp"
#include "core/layer.hpp"
#include "core/philox.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"
#include "net.hpp"

namespace hcnn {

// A layer's random stream with the name of the layer that owns it (checkpoints save them).
struct NamedStream {
  std::string layer;
  CounterStream* stream;
};

// Checks a batch's labels against a classifier's output; `who` names the model in the error.
inline void check_labels(std::span<const int> labels, int batch, int classes, const char* who) {
  if (batch == 0) throw Error(std::string(who) + ": backward or loss called before any forward pass");
  if (labels.size() != static_cast<std::size_t>(batch))
    throw ShapeError(std::string(who) + ": " + std::to_string(labels.size()) + " labels for a batch of " +
                     std::to_string(batch));
  for (std::size_t s = 0; s < labels.size(); ++s)
    if (labels[s] < 0 || labels[s] >= classes)
      throw Error(std::string(who) + ": label " + std::to_string(labels[s]) + " of sample " + std::to_string(s) +
                  " is outside [0, " + std::to_string(classes) + ")");
}

// Mean cross-entropy of probabilities p (labels.size() x classes, labels checked), clamped at
// the smallest normal float as Caffe does.
template <class T>
double mean_cross_entropy(const T* p, int classes, std::span<const int> labels) {
  double sum = 0;
  for (std::size_t s = 0; s < labels.size(); ++s)
    sum -= std::log(std::max(double(p[s * std::size_t(classes) + std::size_t(labels[s])]),
                             double(std::numeric_limits<float>::min())));
  return sum / double(labels.size());
}

// The gradient with respect to the network input is computed only when asked for.
struct BackwardOptions {
  bool input_gradient = false;
};

// Whether layer Spec at input shape In has an implementation on Backend in element type T. A
// missing one fails here, where the compiler names Spec, In, T and Backend ("In instantiation
// of ... [with Spec = hcnn::LRN<5, ...>; ... Backend = hcnn::Cuda]"), not in a cascade of
// incomplete-type errors.
template <class Spec, Shape In, class T, class Backend>
consteval bool layer_implemented() {
  static_assert(BoundLayer<LayerImpl<Spec, In, T, Backend>, T>,
                "Model: a layer has no implementation on this backend and element type (the layer is named in the "
                "'In instantiation of layer_implemented' line above; LayerImpl<Spec, In, T, Backend> is specialised in "
                "backend/cpu/ and backend/cuda/: include <hcnn/hcnn.hpp>, and <hcnn/backend/cuda.hpp> for Cuda)");
  return true;
}

// Model<Net, Backend, T> is specialised for Net types here, and for Combination and Average in
// combination.hpp and average.hpp.
template <class N, class Backend = Cpu, class T = float>
class Model;

template <NetSpec N, class Backend, class T>
class Model<N, Backend, T> {
 public:
  using net = N;
  using backend = Backend;
  using value_type = T;
  using Layers = typename BoundLayers<N, T, Backend>::type;
  static constexpr std::size_t depth = N::depth;
  static constexpr Shape input_shape = N::input_shape;
  static constexpr Shape output_shape = N::output_shape;
  static_assert([]<std::size_t... I>(std::index_sequence<I...>) {
    return (layer_implemented<typename N::template layer<I>, N::template shape_before<I>(), T, Backend>() && ...);
  }(std::make_index_sequence<depth>{}));
  // Ends in Softmax<N>, so it has a loss against labels.
  static constexpr bool is_classifier = requires { N::template layer<depth - 1>::classes; };

  explicit Model(std::uint64_t seed = 0, const Init& init = {}) : names_(layer_names<N>()) {
    if constexpr (std::same_as<Backend, Cpu>) cpu::warn_if_compiled_below_cpu();
    initialize(seed, init);
  }

  // Re-draws every parameter. Each layer draws from its own stream of the seed, so a layer's
  // initial weights do not depend on the layers before it.
  void initialize(std::uint64_t seed, const Init& init = {}) {
    constexpr std::size_t last_weight_layer = last_weight_layer_index<N>();
    for_each_layer([&]<std::size_t I>(auto& layer) {
      Rng rng(seed, I + 1);
      layer.fill(rng, init, I == last_weight_layer);
    });
  }

  // Freezes layers [0, first_trainable): their parameters are marked frozen (solvers skip
  // them), backward passes never visit them (no gradient is computed for them), and in training
  // they run as in testing (BatchNorm uses and keeps its moving statistics). A layer without
  // parameters (dropout, pooling) trains with the first layer above it that has parameters,
  // so a dropout that feeds a trainable layer still drops. first_trainable == depth freezes
  // everything; 0 (the default) trains everything.
  void freeze_below(std::size_t first_trainable) {
    if (first_trainable > depth)
      throw Error("Model::freeze_below: " + std::to_string(first_trainable) + " is past the network's " +
                  std::to_string(depth) + " layers");
    trainable_from_ = first_trainable;
    for_each_layer([&]<std::size_t I>(auto& layer) {
      for (auto& p : layer.params()) p.frozen = I < first_trainable;
    });
  }
  [[nodiscard]] std::size_t trainable_from() const { return trainable_from_; }
  // Whether whatever consumes this model's output trains (a Combination's CLs do); decides
  // whether dropout at the top of a frozen model drops in training. True for a model alone.
  void set_output_feeds_training(bool feeds) { output_feeds_training_ = feeds; }
  // Whether the first layer trains (so whatever feeds this model's input should train too).
  [[nodiscard]] bool input_feeds_training() const { return trains<0>(); }

  // Runs the network on a batch; the result stays valid until the next forward call.
  const Tensor<T, Backend>& forward(const Tensor<T, Backend>& x, Mode mode = Mode::test) {
    if (x.shape() != input_shape)
      throw ShapeError("Model::forward: the input is " + to_string(x.shape()) + " per sample, but the network expects " +
                       to_string(input_shape));
    return forward(x.data(), x.batch(), mode);
  }

  // The same on a raw buffer of n samples in N,C,H,W order, in the backend's memory.
  const Tensor<T, Backend>& forward(const T* x, int n, Mode mode = Mode::test) {
    return forward_with<0>(n, mode,
                           [&](T* input) { copy_values(Backend{}, x, std::size_t(n) * input_shape.size(), input); });
  }

  // Runs layers [From, depth) on n samples whose input to layer From `write(T*)` puts in
  // place (n x the shape entering layer From): how a Combination crops into its bases and
  // concatenates into its CLs without a staging copy, and trains from cached features.
  template <std::size_t From = 0, class Write>
  const Tensor<T, Backend>& forward_with(int n, Mode mode, Write&& write) {
    static_assert(From < depth, "Model::forward_with: From must name a layer");
    if (n <= 0) throw ShapeError("Model::forward: the batch size must be positive, got " + std::to_string(n));
    prepare(n);
    write(acts_[From].data());
    [[maybe_unused]] const PassScope<Backend> scope;
    for_each_layer([&]<std::size_t I>(auto& layer) {
      if constexpr (I >= From) layer.forward(acts_[I].data(), acts_[I + 1].data(), n, layer_mode<I>(mode), workspace_.data());
    });
    return acts_[depth];
  }

  // Mean cross-entropy of the last forward pass against labels (the network must end in
  // Softmax<N>). Probabilities are clamped at the smallest normal float, as Caffe does.
  [[nodiscard]] double loss(std::span<const int> labels) const requires(is_classifier) {
    check_labels(labels, batch_, output_shape.c, "Model");
    return read_on_host(acts_[depth].buffer(),
                        [&](std::span<const T> p) { return mean_cross_entropy(p.data(), output_shape.c, labels); });
  }

  // Back-propagates the mean cross-entropy of the last forward pass (fused softmax gradient).
  // Frozen layers (freeze_below) are not visited; with everything frozen and no input
  // gradient asked for, nothing runs.
  void backward(std::span<const int> labels, BackwardOptions options = {}) requires(is_classifier) {
    check_labels(labels, batch_, output_shape.c, "Model");
    if (!visits<depth - 1>(options)) return;
    ensure_workspace(batch_, Pass::backward);
    [[maybe_unused]] const PassScope<Backend> scope;
    auto& top = layers_.template get<depth - 1>();
    top.backward_from_labels(acts_[depth - 1].data(), acts_[depth].data(), labels.data(), input_grad_of<depth - 1>(options),
                             batch_, workspace_.data());
    backward_below(depth - 1, options);
  }

  // Back-propagates a given gradient with respect to the output (batch x output size, in the
  // backend's memory) of the last forward pass.
  void backward(const T* output_gradient, BackwardOptions options = {}) {
    backward_with(options, [&](T* gradient) {
      copy_values(Backend{}, output_gradient, std::size_t(batch_) * output_shape.size(), gradient);
    });
  }

  // The same with the output gradient put in place by `write(T*)` (batch x output size).
  template <class Write>
  void backward_with(BackwardOptions options, Write&& write) {
    if (batch_ == 0) throw Error("Model: backward called before any forward pass");
    write(gradient_of(depth));
    [[maybe_unused]] const PassScope<Backend> scope;
    backward_below(depth, options);
  }

  // dL/d(input) of the last backward pass that asked for it.
  [[nodiscard]] const T* input_gradient() const { return grads_[gradient_buffer[0]].data(); }

  // The output of layer I (I = depth - 1 is the network output) of the last forward pass.
  template <std::size_t I>
  [[nodiscard]] const Tensor<T, Backend>& activation() const {
    return acts_[I + 1];
  }
  [[nodiscard]] const Tensor<T, Backend>& output() const { return acts_[depth]; }
  // The input of the last forward pass (for the CLs of a Combination: the concatenation).
  [[nodiscard]] const Tensor<T, Backend>& input() const { return acts_[0]; }
  [[nodiscard]] int batch() const { return batch_; }

  template <std::size_t I>
  [[nodiscard]] auto& layer() {
    return layers_.template get<I>();
  }
  template <std::size_t I>
  [[nodiscard]] const auto& layer() const {
    return layers_.template get<I>();
  }
  [[nodiscard]] const std::array<std::string, depth>& names() const { return names_; }

  // Every blob (learnable parameters and layer state), in layer order.
  std::vector<NamedParam<T, Backend>> parameters() {
    std::vector<NamedParam<T, Backend>> all;
    for_each_layer([&]<std::size_t I>(auto& layer) {
      for (auto& p : layer.params()) all.push_back({names_[I], &p});
    });
    return all;
  }

  // Every layer's random stream (dropout), in layer order.
  std::vector<NamedStream> random_streams() {
    std::vector<NamedStream> all;
    for_each_layer([&]<std::size_t I>(auto& layer) {
      if constexpr (requires { layer.stream(); }) all.push_back({names_[I], &layer.stream()});
    });
    return all;
  }

  // Visits each bound layer as f.template operator()<I>(layer), in order.
  template <class F>
  void for_each_layer(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f.template operator()<I>(layers_.template get<I>()), ...);
    }(std::make_index_sequence<depth>{});
  }

 private:
  void prepare(int n) {
    batch_ = n;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (acts_[I].resize(n, N::template shape_before<I>()), ...);
    }(std::make_index_sequence<depth>{});
    acts_[depth].resize(n, output_shape);
    std::array<std::size_t, 2> grad_sizes{};
    for (std::size_t i = 0; i <= depth; ++i)
      grad_sizes[gradient_buffer[i]] = std::max(grad_sizes[gradient_buffer[i]], acts_[i].size());
    grads_[0].ensure(grad_sizes[0]);
    grads_[1].ensure(grad_sizes[1]);
    ensure_workspace(n, Pass::forward);
  }
  // One workspace serves every layer in turn: the largest any of them needs for this pass.
  void ensure_workspace(int n, Pass pass) {
    std::size_t bytes = 0;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((bytes = std::max(bytes, layers_.template get<I>().workspace_bytes(n, pass))), ...);
    }(std::make_index_sequence<depth>{});
    workspace_.ensure((bytes + sizeof(T) - 1) / sizeof(T));
  }

  static constexpr bool has_params(std::size_t i) {
    return []<std::size_t... I>(std::size_t at, std::index_sequence<I...>) {
      return ((I == at && N::template layer<I>::template param_count<N::template shape_before<I>()>() > 0) || ...);
    }(i, std::make_index_sequence<depth>{});
  }

  // Whether layer I trains in a training pass: its own parameters, or for a layer without any,
  // those of the first layer above it that has some (or the model's consumer, at the top).
  template <std::size_t I>
  [[nodiscard]] bool trains() const {
    if constexpr (I == depth) {
      return output_feeds_training_;
    } else if constexpr (has_params(I)) {
      return I >= trainable_from_;
    } else {
      return I >= trainable_from_ || trains<I + 1>();
    }
  }
  template <std::size_t I>
  [[nodiscard]] Mode layer_mode(Mode mode) const {
    return mode == Mode::train && trains<I>() ? Mode::train : Mode::test;
  }

  // Whether the backward pass runs layer I: it is trainable, or an input gradient must pass it.
  template <std::size_t I>
  [[nodiscard]] bool visits(const BackwardOptions& options) const {
    return I >= trainable_from_ || options.input_gradient;
  }

  // The gradient of acts_[i] lives in grads_[gradient_buffer[i]]. A layer that computes its
  // input gradient over its output gradient (InPlaceInputGradient) keeps both in one buffer;
  // across any other layer the two buffers alternate. Each buffer is then only as large as
  // the gradients it holds: for VGG-19, whose equal-shaped 3x3 convolutions all work in place,
  // the conv1 maps' size and the conv2_1 input's instead of twice the former.
  static constexpr std::array<std::uint8_t, depth + 1> gradient_buffer = [] {
    constexpr auto in_place = []<std::size_t... I>(std::index_sequence<I...>) {
      return std::array<bool, depth>{InPlaceInputGradient<typename Layers::template type<I>>...};
    }(std::make_index_sequence<depth>{});
    std::array<std::uint8_t, depth + 1> buffer{};
    for (std::size_t i = depth; i-- > 0;) buffer[i] = in_place[i] ? buffer[i + 1] : std::uint8_t(1 - buffer[i + 1]);
    return buffer;
  }();
  T* gradient_of(std::size_t i) { return grads_[gradient_buffer[i]].data(); }

  // Where layer I writes its input gradient (null when nothing below needs it).
  template <std::size_t I>
  T* input_grad_of(const BackwardOptions& options) {
    const bool wanted = I > 0 ? visits<I - 1>(options) : options.input_gradient;
    return wanted ? gradient_of(I) : nullptr;
  }

  // Runs the visited layers below `top` backwards; the gradient of layer top-1's output is in
  // gradient_of(top).
  void backward_below(std::size_t top, const BackwardOptions& options) {
    ensure_workspace(batch_, Pass::backward);  // the lanes of a convolution follow the thread count of now
    [&]<std::size_t... R>(std::index_sequence<R...>) {
      (backward_layer<depth - 1 - R>(top, options), ...);
    }(std::make_index_sequence<depth>{});
  }
  template <std::size_t I>
  void backward_layer(std::size_t top, const BackwardOptions& options) {
    if (I >= top || !visits<I>(options)) return;
    layers_.template get<I>().backward(acts_[I].data(), acts_[I + 1].data(), gradient_of(I + 1), input_grad_of<I>(options),
                                  batch_, workspace_.data());
  }

  Layers layers_;
  std::array<std::string, depth> names_;
  std::array<Tensor<T, Backend>, depth + 1> acts_;
  std::array<Buffer<T, Backend>, 2> grads_;
  Buffer<T, Backend> workspace_;
  int batch_ = 0;
  std::size_t trainable_from_ = 0;
  bool output_feeds_training_ = true;
};

}  // namespace hcnn
