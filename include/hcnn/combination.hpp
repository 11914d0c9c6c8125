// hcnn/combination.hpp — Combination<Bases..., CLs...>: the paper's heterogeneous network.
//
// The leading network types are the bases, the rest the combination layers (CLs). Each base
// loses as many top weight layers as the CLs hold (with the dropout, activation or BatchNorm
// that follow them), unless `Drop<Base, k>` says how many; the kept tops are flattened in
// C,H,W order and concatenated, and the CLs are a Net on that vector:
//
//   Combination<zoo::CaffeNet<1000>, zoo::VGG19<1000>, FC<4096>, Softmax<N>>   // [D,VD]+2CL
//     = fc6 of D (4096) ++ fc6 of VD (4096) -> fcα 4096 -> softmax N
//
// Bases with different input sizes each take the centre crop of their own size from the
// shared input, which is the largest of them. Model<Combination<...>> holds one Model per
// truncated base (model.base<i>(), which import_caffemodel fills by Caffe's names) and one for
// the CLs (model.head()); forward and backward are folds over them, like Net's over layers.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/shape.hpp"
#include "core/type_list.hpp"
#include "layers/input.hpp"
#include "model.hpp"
#include "net.hpp"

namespace hcnn {

// A base with its top K weight layers removed (and everything above the lowest removed one).
template <NetSpec Base, std::size_t K>
struct Drop {
  using base = Base;
  static constexpr std::size_t dropped = K;
};

template <class B>
inline constexpr bool is_drop = false;
template <class B, std::size_t K>
inline constexpr bool is_drop<Drop<B, K>> = true;

// What may stand in a base's place: a network type, or a Drop of one.
template <class B>
concept BaseSpec = NetSpec<B> || is_drop<B>;

// The first Keep layers of N as a network of their own, keeping N's own layer names.
template <NetSpec N, std::size_t Keep>
struct PrefixNames {};
template <NetSpec N, std::size_t Keep>
  requires requires { N::layer_names; }
struct PrefixNames<N, Keep> {
  static constexpr std::array<std::string_view, Keep> layer_names = [] {
    std::array<std::string_view, Keep> names{};
    for (std::size_t i = 0; i < Keep; ++i) names[i] = N::layer_names[i];
    return names;
  }();
};

template <NetSpec N, std::size_t Keep, class Seq = std::make_index_sequence<Keep>>
struct TruncatedNet;
template <NetSpec N, std::size_t Keep, std::size_t... I>
struct TruncatedNet<N, Keep, std::index_sequence<I...>> : Net<typename N::input, typename N::template layer<I>...>,
                                                          PrefixNames<N, Keep> {};

namespace detail {

template <class L>
inline constexpr bool is_softmax = requires { L::classes; };

// One step per base so that a misfit names it: "Index = 1; Base = zoo::VGG19<1000>; K = 30".
template <std::size_t Index, class Base, std::size_t K>
consteval std::size_t checked_cut() {
  static_assert(K <= Base::weight_layers,
                "Combination: a base would lose more weight layers than it has (the CLs hold more weight layers "
                "than the base, or Drop<Base, k> has k too large)");
  constexpr std::size_t keep = top_weight_layer_index<Base>(K);
  static_assert(keep > 0 && K < Base::weight_layers,
                "Combination: a base would keep none of its weight layers: its top would be the raw input, not "
                "features");
  constexpr bool keeps_softmax = []<std::size_t... I>(std::index_sequence<I...>) {
    return (is_softmax<typename Base::template layer<I>> || ...);
  }(std::make_index_sequence<keep>{});
  static_assert(!keeps_softmax,
                "Combination: a base keeps its Softmax classifier: its top would be class probabilities, not "
                "features; drop at least one weight layer (Drop<Base, k> with k >= 1)");
  return keep;
}

template <class B, std::size_t DefaultK>
struct BaseOf {
  using net = B;
  static constexpr std::size_t dropped = DefaultK;
};
template <class B, std::size_t K, std::size_t DefaultK>
struct BaseOf<Drop<B, K>, DefaultK> {
  using net = B;
  static constexpr std::size_t dropped = K;
};

template <class... Args>
consteval std::size_t leading_bases() {
  constexpr bool flags[] = {BaseSpec<Args>...};
  std::size_t n = 0;
  while (n < sizeof...(Args) && flags[n]) ++n;
  return n;
}

// The input all bases are cut from: their common channels, the largest height and width.
template <class... Bases>
consteval Shape shared_input() {
  constexpr std::array<Shape, sizeof...(Bases)> shapes{Bases::input_shape...};
  Shape s = shapes[0];
  for (const Shape& b : shapes) s = {s.c, std::max(s.h, b.h), std::max(s.w, b.w)};
  return s;
}
template <class... Bases>
consteval bool same_channels() {
  constexpr std::array<Shape, sizeof...(Bases)> shapes{Bases::input_shape...};
  for (const Shape& b : shapes)
    if (b.c != shapes[0].c) return false;
  return true;
}

// Writes the centre Inner-sized crop of n samples of Outer into dst (Caffe's centre crop:
// offset (Outer - Inner) / 2, rounded down).
template <Shape Outer, Shape Inner, class Backend = Cpu, class T>
void centre_crop(const T* x, int n, T* dst) {
  if constexpr (Outer == Inner) {
    copy_values(Backend{}, x, static_cast<std::size_t>(n) * Outer.size(), dst);
  } else {
    constexpr int top = (Outer.h - Inner.h) / 2, left = (Outer.w - Inner.w) / 2;
    for (int s = 0; s < n; ++s)
      for (int c = 0; c < Inner.c; ++c)
        copy_rows(Backend{}, x + ((std::size_t(s) * Outer.c + c) * Outer.h + top) * Outer.w + left, Outer.w,
                  dst + (std::size_t(s) * Inner.c + c) * Inner.h * Inner.w, Inner.w, Inner.w, Inner.h);
  }
}

// The parameters or streams of a model, each layer name prefixed with the model's.
template <class Item, class F>
void append_prefixed(std::vector<Item>& all, const std::string& prefix, F&& items) {
  for (auto item : items()) {
    item.layer = prefix + item.layer;
    all.push_back(std::move(item));
  }
}

// The base models of a Combination or an Average: one Model per base network, each reading
// the centre crop of its own input size from the shared input, their blobs named
// "base<i>/<layer>".
template <Shape SharedInput, class Backend, class T, class... Nets>
class BaseModels {
 public:
  using Tuple = std::tuple<Model<Nets, Backend, T>...>;
  static constexpr std::size_t count = sizeof...(Nets);
  template <std::size_t I>
  using Base = std::tuple_element_t<I, Tuple>;

  // Each base draws from its own stream of the seed, so [D,D'] made from one seed holds two
  // different D's.
  void initialize(std::uint64_t seed, const Init& init) {
    for_each([&]<std::size_t I>(auto& base) { base.initialize(Rng(seed, 1000 + I).next(), init); });
  }

  template <std::size_t I>
  [[nodiscard]] Base<I>& get() {
    return std::get<I>(models_);
  }
  template <std::size_t I>
  [[nodiscard]] const Base<I>& get() const {
    return std::get<I>(models_);
  }

  // Visits each base model as f.template operator()<I>(base), in order.
  template <class F>
  void for_each(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (f.template operator()<I>(std::get<I>(models_)), ...); }(
        std::make_index_sequence<count>{});
  }
  template <class F>
  void for_each(F&& f) const {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (f.template operator()<I>(std::get<I>(models_)), ...); }(
        std::make_index_sequence<count>{});
  }

  static void check_input(Shape shape, const char* who) {
    if (shape != SharedInput)
      throw ShapeError(std::string(who) + ": the input is " + to_string(shape) + " per sample, but it expects " +
                       to_string(SharedInput) + " (the largest of its bases' inputs)");
  }

  // Runs every base on its centre crop of the n samples of x.
  void forward(const T* x, int n, Mode mode) {
    for_each([&]<std::size_t I>(auto&) { forward_one<I>(x, n, mode); });
  }
  // Runs base I alone on its centre crop.
  template <std::size_t I>
  void forward_one(const T* x, int n, Mode mode) {
    get<I>().forward_with(n, mode,
                          [&](T* input) { centre_crop<SharedInput, Base<I>::input_shape, Backend>(x, n, input); });
  }

  void append_parameters(std::vector<NamedParam<T, Backend>>& all) {
    for_each([&]<std::size_t I>(auto& base) {
      append_prefixed(all, "base" + std::to_string(I) + "/", [&] { return base.parameters(); });
    });
  }
  void append_streams(std::vector<NamedStream>& all) {
    for_each([&]<std::size_t I>(auto& base) {
      append_prefixed(all, "base" + std::to_string(I) + "/", [&] { return base.random_streams(); });
    });
  }

 private:
  Tuple models_;
};

}  // namespace detail

namespace detail {
// Copies into each blob of `to` whose layer `source_layer` maps to a name the blob of that
// layer and name in `from`, after checking them all (nothing is written if one fails).
template <class From, class To, class SourceLayer>
void copy_blobs(From& from, To& to, SourceLayer&& source_layer, const char* who) {
  auto source = from.parameters();
  auto target = to.parameters();
  std::vector<std::pair<const Param<typename From::value_type, typename From::backend>*,
                        Param<typename To::value_type, typename To::backend>*>>
      pairs;
  for (auto& named : target) {
    const std::optional<std::string> layer = source_layer(named.layer);
    if (!layer) continue;
    auto* p = named.param;
    const auto match = std::find_if(source.begin(), source.end(),
                                    [&](const auto& s) { return s.layer == *layer && s.param->name == p->name; });
    if (match == source.end()) throw Error(std::string(who) + ": the source has no blob " + *layer + "." + p->name);
    if (match->param->dims != p->dims)
      throw ShapeError(std::string(who) + ": blob " + *layer + "." + p->name + " is " +
                       dims_to_string(match->param->dims) + " in the source and " + named.layer + "." + p->name +
                       " is " + dims_to_string(p->dims) + " in the target");
    pairs.emplace_back(match->param, p);
  }
  // Through host memory, so the two models may differ in backend and element type.
  for (const auto& pair : pairs)  // not a structured binding: clang 14 cannot capture one
    read_on_host(pair.first->value, [&](auto values) {
      write_on_host(pair.second->value, [&](auto blob) { std::copy(values.begin(), values.end(), blob.begin()); });
    });
}
}  // namespace detail

// Copies into `to` every blob of the same layer and name in `from`, after checking them all:
// how a base pre-trained on its own (step (a) of the paper) enters a Combination, whose
// model.base<i>() holds the first layers of it under the same names.
template <class From, class To>
void copy_parameters(From& from, To& to) {
  detail::copy_blobs(from, to, [](const std::string& layer) { return std::optional<std::string>(layer); },
                     "copy_parameters");
}

// Copies whole layers under other names, {target layer, source layer} pairs: a network's
// pre-trained fc7 into a one-base Combination's fc-alpha ({"cl/fc1", "fc7"}: the paper's single
// network with its two top layers fine-tuned, Fig. 5b), or a joint's fc-alpha trained on one
// task into the joint of another.
template <class From, class To>
void copy_layers(From& from, To& to, const std::vector<std::pair<std::string, std::string>>& target_from_source) {
  const auto target = to.parameters();
  for (const auto& pair : target_from_source)
    if (std::none_of(target.begin(), target.end(), [&](const auto& named) { return named.layer == pair.first; }))
      throw Error("copy_layers: the target has no layer " + pair.first + " with blobs");
  detail::copy_blobs(
      from, to,
      [&](const std::string& layer) -> std::optional<std::string> {
        for (const auto& [to_layer, from_layer] : target_from_source)
          if (to_layer == layer) return from_layer;
        return std::nullopt;
      },
      "copy_layers");
}

template <class... Args>
struct Combination {
  static constexpr std::size_t base_count = detail::leading_bases<Args...>();
  static constexpr std::size_t cl_count = sizeof...(Args) - base_count;
  // One base is the paper's single-network transfer (Fig. 5b): the network with its top layers
  // replaced by the CLs, trained (and cached) like any combination.
  static_assert(base_count >= 1, "Combination: needs a base network (a Net type or Drop<Net, k>) first");
  static_assert(cl_count >= 1, "Combination: needs at least one combination layer after the bases (e.g. Softmax<N>)");

  template <std::size_t I>
  using cl_layer = type_at<base_count + I, Args...>;
  static_assert([]<std::size_t... I>(std::index_sequence<I...>) {
    return (LayerSpec<cl_layer<I>> && ...);
  }(std::make_index_sequence<cl_count>{}), "Combination: after the bases, every element must be a layer template (FC, Softmax, ...)");

  static constexpr std::size_t cl_weight_layers = []<std::size_t... I>(std::index_sequence<I...>) {
    return (std::size_t{cl_layer<I>::weight_layer} + ...);
  }(std::make_index_sequence<cl_count>{});

  // Base I as given (its full network) and as kept.
  template <std::size_t I>
  using original_base = typename detail::BaseOf<type_at<I, Args...>, cl_weight_layers>::net;
  template <std::size_t I>
  static constexpr std::size_t dropped = detail::BaseOf<type_at<I, Args...>, cl_weight_layers>::dropped;
  template <std::size_t I>
  using base = TruncatedNet<original_base<I>, detail::checked_cut<I, original_base<I>, dropped<I>>()>;

 private:
  template <class Seq>
  struct Folds;
  template <std::size_t... I>
  struct Folds<std::index_sequence<I...>> {
    static constexpr bool same_channels = detail::same_channels<base<I>...>();
    static constexpr Shape input = detail::shared_input<base<I>...>();
    static constexpr int width = static_cast<int>((base<I>::output_shape.size() + ...));
  };
  template <class Seq>
  struct HeadOf;
  template <std::size_t... I>
  struct HeadOf<std::index_sequence<I...>> {
    using type = Net<Input<Folds<std::make_index_sequence<base_count>>::width, 1, 1>, cl_layer<I>...>;
  };
  using folds = Folds<std::make_index_sequence<base_count>>;
  static_assert(folds::same_channels, "Combination: every base must take the same number of input channels");

 public:
  static constexpr Shape input_shape = folds::input;
  // Width of the concatenated features: the sum of the kept tops' C*H*W.
  static constexpr int concat_width = folds::width;
  using head = typename HeadOf<std::make_index_sequence<cl_count>>::type;
  static constexpr Shape output_shape = head::output_shape;
  static constexpr std::size_t weight_layers = []<std::size_t... I>(std::index_sequence<I...>) {
    return (base<I>::weight_layers + ...) + head::weight_layers;
  }(std::make_index_sequence<base_count>{});

 private:
  template <class Backend, class T, class Seq>
  struct BaseModelsFor;
  template <class Backend, class T, std::size_t... I>
  struct BaseModelsFor<Backend, T, std::index_sequence<I...>> {
    using type = detail::BaseModels<input_shape, Backend, T, base<I>...>;
  };

 public:
  // The kept bases as models on a backend (what Model<Combination> holds).
  template <class Backend, class T>
  using BaseModelsOf = typename BaseModelsFor<Backend, T, std::make_index_sequence<base_count>>::type;
};

template <class C>
inline constexpr bool is_combination = false;
template <class... Args>
inline constexpr bool is_combination<Combination<Args...>> = true;

// The index of the first of a network's trailing Dropout layers (depth if it has none): the
// features a frozen base gives are its output before them, and they still drop per step.
template <NetSpec N>
consteval std::size_t trailing_dropout_start() {
  constexpr auto is_dropout = []<std::size_t... I>(std::index_sequence<I...>) {
    return std::array<bool, N::depth>{(N::template layer<I>::kind == std::string_view("Dropout"))...};
  }(std::make_index_sequence<N::depth>{});
  std::size_t start = N::depth;
  while (start > 0 && is_dropout[start - 1]) --start;
  return start;
}

template <class... Args, class Backend, class T>
class Model<Combination<Args...>, Backend, T> {
 public:
  using net = Combination<Args...>;
  using backend = Backend;
  using value_type = T;
  static constexpr std::size_t base_count = net::base_count;
  static constexpr Shape input_shape = net::input_shape;
  static constexpr Shape output_shape = net::output_shape;
  using Head = Model<typename net::head, Backend, T>;
  static constexpr bool is_classifier = Head::is_classifier;

  using Bases = typename net::template BaseModelsOf<Backend, T>;
  template <std::size_t I>
  using BaseModel = typename Bases::template Base<I>;
  // The features of base I a frozen base contributes: its output before its trailing dropout.
  template <std::size_t I>
  static constexpr std::size_t feature_size = static_cast<std::size_t>(net::template base<I>::output_shape.size());

  explicit Model(std::uint64_t seed = 0, const Init& init = {}) { initialize(seed, init); }

  void initialize(std::uint64_t seed, const Init& init = {}) {
    bases_.initialize(seed, init);
    head_.initialize(Rng(seed, 999).next(), init);
  }

  template <std::size_t I>
  [[nodiscard]] BaseModel<I>& base() {
    return bases_.template get<I>();
  }
  template <std::size_t I>
  [[nodiscard]] const BaseModel<I>& base() const {
    return bases_.template get<I>();
  }
  [[nodiscard]] Head& head() { return head_; }
  [[nodiscard]] const Head& head() const { return head_; }

  const Tensor<T, Backend>& forward(const Tensor<T, Backend>& x, Mode mode = Mode::test) {
    Bases::check_input(x.shape(), "Combination");
    return forward(x.data(), x.batch(), mode);
  }

  const Tensor<T, Backend>& forward(const T* x, int n, Mode mode = Mode::test) {
    forward_bases(x, n, mode);
    return head_.forward_with(n, mode, [&](T* concat) { concatenate(n, concat, [&]<std::size_t I>() {
                                                    return base<I>().output().data();
                                                  }); });
  }

  // Runs only the bases (each on its centre crop of x); base_features<I>() then holds what
  // a feature cache stores.
  void forward_bases(const T* x, int n, Mode mode = Mode::test) {
    const bool feeds = head_.input_feeds_training();
    for_each_base([&]<std::size_t I>(auto& base) { base.set_output_feeds_training(feeds); });
    bases_.forward(x, n, mode);
  }

  // Runs base I alone (a feature cache that holds the others' features already).
  template <std::size_t I>
  void forward_base(const T* x, int n, Mode mode = Mode::test) {
    base<I>().set_output_feeds_training(head_.input_feeds_training());
    bases_.template forward_one<I>(x, n, mode);
  }

  // The same from cached features: features[i] holds n x feature_size<i> values of base i,
  // as base_features() gives them. Only the bases' trailing dropouts run (in training, they
  // drop as they would on the recomputed features).
  const Tensor<T, Backend>& forward_from_features(std::span<const T* const, base_count> features, int n,
                                                  Mode mode = Mode::train) {
    const bool feeds = head_.input_feeds_training();
    for_each_base([&]<std::size_t I>(auto& base) {
      constexpr std::size_t start = trailing_dropout_start<typename net::template base<I>>();
      if constexpr (start < BaseModel<I>::depth) {
        base.set_output_feeds_training(feeds);
        base.template forward_with<start>(n, mode, [&](T* at) {
          copy_values(Backend{}, features[I], std::size_t(n) * feature_size<I>, at);
        });
      }
    });
    return head_.forward_with(n, mode, [&](T* concat) {
      concatenate(n, concat, [&]<std::size_t I>() -> const T* {
        constexpr std::size_t start = trailing_dropout_start<typename net::template base<I>>();
        if constexpr (start < BaseModel<I>::depth) return base<I>().output().data();
        else return features[I];
      });
    });
  }

  // Base I's features of the last forward pass, before its trailing dropout: what a feature
  // cache stores. In test mode (and for a frozen base in training, whose trailing dropout is
  // the only layer that differs) they equal its output.
  template <std::size_t I>
  [[nodiscard]] const T* base_features() const {
    constexpr std::size_t start = trailing_dropout_start<typename net::template base<I>>();
    if constexpr (start == 0) return nullptr;  // unreachable: a kept base has a weight layer
    else return base<I>().template activation<start - 1>().data();
  }

  [[nodiscard]] double loss(std::span<const int> labels) const requires(is_classifier) { return head_.loss(labels); }

  // Back-propagates the mean cross-entropy through the CLs and into every base that has a
  // trainable layer (frozen bases are not visited at all). options.input_gradient asks for the
  // gradient at the concatenation (concat_gradient()) even when no base trains: the Fig. 3
  // analysis reads it.
  void backward(std::span<const int> labels, BackwardOptions options = {}) requires(is_classifier) {
    head_.backward(labels, {.input_gradient = options.input_gradient || any_base_trains()});
    backward_bases();
  }
  void backward(const T* output_gradient, BackwardOptions options = {}) {
    head_.backward(output_gradient, {.input_gradient = options.input_gradient || any_base_trains()});
    backward_bases();
  }

  // dL/d(concatenation), batch x concat_width, of the last backward pass that computed it.
  [[nodiscard]] const T* concat_gradient() const { return head_.input_gradient(); }
  [[nodiscard]] const Tensor<T, Backend>& output() const { return head_.output(); }
  [[nodiscard]] int batch() const { return head_.batch(); }

  [[nodiscard]] bool any_base_trains() const {
    bool any = false;
    for_each_base([&]<std::size_t I>(const auto& base) { any = any || base.trainable_from() < BaseModel<I>::depth; });
    return any;
  }

  // Every blob: the bases' as "base<i>/<layer>", then the CLs' as "cl/<layer>", so names are
  // unique across bases (two D's included).
  std::vector<NamedParam<T, Backend>> parameters() {
    std::vector<NamedParam<T, Backend>> all;
    bases_.append_parameters(all);
    detail::append_prefixed(all, "cl/", [&] { return head_.parameters(); });
    return all;
  }
  std::vector<NamedStream> random_streams() {
    std::vector<NamedStream> all;
    bases_.append_streams(all);
    detail::append_prefixed(all, "cl/", [&] { return head_.random_streams(); });
    return all;
  }

  // Visits each base model as f.template operator()<I>(base), in order.
  template <class F>
  void for_each_base(F&& f) {
    bases_.for_each(f);
  }
  template <class F>
  void for_each_base(F&& f) const {
    bases_.for_each(f);
  }

 private:
  // Lays the bases' n x size_i blocks side by side per sample: [base0 | base1 | ...].
  template <class Source>
  void concatenate(int n, T* concat, Source&& source) {
    std::size_t offset = 0;
    for_each_base([&]<std::size_t I>(auto&) {
      constexpr std::size_t size = feature_size<I>;
      copy_rows(Backend{}, source.template operator()<I>(), size, concat + offset, net::concat_width, size,
                std::size_t(n));
      offset += size;
    });
  }

  void backward_bases() {
    const T* gradient = head_.input_gradient();
    const int n = head_.batch();
    std::size_t offset = 0;
    for_each_base([&]<std::size_t I>(auto& base) {
      constexpr std::size_t size = feature_size<I>;
      if (base.trainable_from() < BaseModel<I>::depth)
        base.backward_with({}, [&](T* dout) {
          copy_rows(Backend{}, gradient + offset, net::concat_width, dout, size, size, std::size_t(n));
        });
      offset += size;
    });
  }

  Bases bases_;
  Head head_;
};

}  // namespace hcnn
