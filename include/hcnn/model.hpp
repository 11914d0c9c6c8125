// hcnn/model.hpp — Model<Net, Backend, T>: a network type instantiated with its parameters.
//
// The network type stays empty; a Model owns the bound layers (with their parameters and
// gradients), one activation tensor per layer output and two gradient buffers that the
// backward pass alternates between. Buffers grow on the first batch of a given size and are
// reused afterwards, so a training loop does not allocate. Forward and backward are folds over
// the layer tuple: no virtual calls and no runtime graph.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/filler.hpp"
#include "core/layer.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"
#include "net.hpp"

namespace hcnn {

// A parameter with the name of the layer that holds it ("conv1", "weight").
template <class T, class Backend>
struct NamedParam {
  std::string layer;
  Param<T, Backend>* param;
};

// How far a backward pass goes. Layers below `stop_at` are not visited (their parameter
// gradients are left as they were): frozen base layers cost nothing. The gradient with respect
// to the network input is computed only when asked for.
struct BackwardOptions {
  std::size_t stop_at = 0;
  bool input_gradient = false;
};

template <NetSpec N, class Backend = Cpu, class T = float>
class Model {
 public:
  using net = N;
  using backend = Backend;
  using value_type = T;
  using Layers = typename BoundLayers<N, T, Backend>::type;
  static constexpr std::size_t depth = N::depth;
  static constexpr Shape input_shape = N::input_shape;
  static constexpr Shape output_shape = N::output_shape;
  static_assert(
      []<std::size_t... I>(std::index_sequence<I...>) {
        return (BoundLayer<std::tuple_element_t<I, Layers>, T> && ...);
      }(std::make_index_sequence<depth>{}),
      "Model: a layer has no implementation on this backend and element type (LayerImpl<Spec, In, T, Backend> is "
      "specialised in backend/cpu/ for Cpu; include <hcnn/hcnn.hpp> or the backend's header)");
  // Ends in Softmax<N>, so it has a loss against labels.
  static constexpr bool is_classifier = requires { N::template layer<depth - 1>::classes; };

  explicit Model(std::uint64_t seed = 0, const Init& init = {}) : names_(layer_names<N>()) { initialize(seed, init); }

  // Re-draws every parameter. Each layer draws from its own stream of the seed, so a layer's
  // initial weights do not depend on the layers before it.
  void initialize(std::uint64_t seed, const Init& init = {}) {
    constexpr std::size_t last_weight_layer = last_weight_layer_index<N>();
    for_each_layer([&]<std::size_t I>(auto& layer) {
      Rng rng(seed, I + 1);
      layer.fill(rng, init, I == last_weight_layer);
    });
  }

  // Runs the network on a batch; the result stays valid until the next forward call.
  const Tensor<T, Backend>& forward(const Tensor<T, Backend>& x, Mode mode = Mode::test) {
    if (x.shape() != input_shape)
      throw ShapeError("Model::forward: the input is " + to_string(x.shape()) + " per sample, but the network expects " +
                       to_string(input_shape));
    return forward(x.data(), x.batch(), mode);
  }

  // The same on a raw buffer of n samples in N,C,H,W order.
  const Tensor<T, Backend>& forward(const T* x, int n, Mode mode = Mode::test) {
    if (n <= 0) throw ShapeError("Model::forward: the batch size must be positive, got " + std::to_string(n));
    prepare(n);
    std::copy(x, x + static_cast<std::size_t>(n) * input_shape.size(), acts_[0].data());
    for_each_layer([&]<std::size_t I>(auto& layer) {
      layer.forward(acts_[I].data(), acts_[I + 1].data(), n, mode, workspace_.data());
    });
    return acts_[depth];
  }

  // Mean cross-entropy of the last forward pass against labels (the network must end in
  // Softmax<N>). Probabilities are clamped at the smallest normal float, as Caffe does.
  [[nodiscard]] double loss(std::span<const int> labels) const requires(is_classifier) {
    check_labels(labels);
    const T* p = acts_[depth].data();
    double sum = 0;
    for (int s = 0; s < batch_; ++s)
      sum -= std::log(std::max(double(p[s * output_shape.c + labels[s]]), double(std::numeric_limits<float>::min())));
    return sum / batch_;
  }

  // Back-propagates the mean cross-entropy of the last forward pass (fused softmax gradient).
  void backward(std::span<const int> labels, BackwardOptions options = {}) requires(is_classifier) {
    check_labels(labels);
    auto& top = std::get<depth - 1>(layers_);
    top.backward_from_labels(acts_[depth - 1].data(), acts_[depth].data(), labels.data(), input_grad_of<depth - 1>(options),
                             batch_, workspace_.data());
    backward_below(depth - 1, options);
  }

  // Back-propagates a given gradient with respect to the output (batch x output size) of the
  // last forward pass.
  void backward(const T* output_gradient, BackwardOptions options = {}) {
    if (batch_ == 0) throw Error("Model: backward called before any forward pass");
    std::copy(output_gradient, output_gradient + static_cast<std::size_t>(batch_) * output_shape.size(),
              grads_[depth % 2].data());
    backward_below(depth, options);
  }

  // dL/d(input) of the last backward pass that asked for it.
  [[nodiscard]] const T* input_gradient() const { return grads_[0].data(); }

  // The output of layer I (I = depth - 1 is the network output) of the last forward pass.
  template <std::size_t I>
  [[nodiscard]] const Tensor<T, Backend>& activation() const {
    return acts_[I + 1];
  }
  [[nodiscard]] const Tensor<T, Backend>& output() const { return acts_[depth]; }
  [[nodiscard]] int batch() const { return batch_; }

  template <std::size_t I>
  [[nodiscard]] auto& layer() {
    return std::get<I>(layers_);
  }
  template <std::size_t I>
  [[nodiscard]] const auto& layer() const {
    return std::get<I>(layers_);
  }
  [[nodiscard]] const std::array<std::string, depth>& names() const { return names_; }

  // Every parameter blob, in layer order.
  std::vector<NamedParam<T, Backend>> parameters() {
    std::vector<NamedParam<T, Backend>> all;
    for_each_layer([&]<std::size_t I>(auto& layer) {
      for (auto& p : layer.params()) all.push_back({names_[I], &p});
    });
    return all;
  }

  // Visits each bound layer as f.template operator()<I>(layer), in order.
  template <class F>
  void for_each_layer(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f.template operator()<I>(std::get<I>(layers_)), ...);
    }(std::make_index_sequence<depth>{});
  }

 private:
  void check_labels(std::span<const int> labels) const {
    if (batch_ == 0) throw Error("Model: backward or loss called before any forward pass");
    if (labels.size() != static_cast<std::size_t>(batch_))
      throw ShapeError("Model: " + std::to_string(labels.size()) + " labels for a batch of " + std::to_string(batch_));
    for (std::size_t s = 0; s < labels.size(); ++s)
      if (labels[s] < 0 || labels[s] >= output_shape.c)
        throw Error("Model: label " + std::to_string(labels[s]) + " of sample " + std::to_string(s) +
                    " is outside [0, " + std::to_string(output_shape.c) + ")");
  }

  void prepare(int n) {
    batch_ = n;
    std::size_t grad_size = 0, workspace = 0;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (acts_[I].resize(n, N::template shape_before<I>()), ...);
      ((workspace = std::max(workspace, std::tuple_element_t<I, Layers>::workspace_size(n))), ...);
    }(std::make_index_sequence<depth>{});
    acts_[depth].resize(n, output_shape);
    for (const auto& a : acts_) grad_size = std::max(grad_size, a.size());
    grads_[0].ensure(grad_size);
    grads_[1].ensure(grad_size);
    workspace_.ensure(workspace);
  }

  // Where layer I writes its input gradient: the gradient buffers alternate by layer index,
  // so the network input's gradient always ends in grads_[0].
  template <std::size_t I>
  T* input_grad_of(const BackwardOptions& options) {
    const bool wanted = I > options.stop_at || (I == 0 && options.input_gradient);
    return wanted ? grads_[I % 2].data() : nullptr;
  }

  // Runs layers [stop_at, top) backwards; the gradient of layer top-1's output is in grads_[top % 2].
  void backward_below(std::size_t top, const BackwardOptions& options) {
    [&]<std::size_t... R>(std::index_sequence<R...>) {
      (backward_layer<depth - 1 - R>(top, options), ...);
    }(std::make_index_sequence<depth>{});
  }
  template <std::size_t I>
  void backward_layer(std::size_t top, const BackwardOptions& options) {
    if (I >= top || I < options.stop_at) return;
    std::get<I>(layers_).backward(acts_[I].data(), acts_[I + 1].data(), grads_[(I + 1) % 2].data(),
                                  input_grad_of<I>(options), batch_, workspace_.data());
  }

  Layers layers_;
  std::array<std::string, depth> names_;
  std::array<Tensor<T, Backend>, depth + 1> acts_;
  std::array<Buffer<T, Backend>, 2> grads_;
  Buffer<T, Backend> workspace_;
  int batch_ = 0;
};

}  // namespace hcnn
