// hcnn/net.hpp — Net<Input<C, H, W>, Layers...>: a network as a flat list of layer templates.
//
// A Net is an empty type. Its shapes are computed at compile time by folding each layer's
// shape rule over the list, so a network that does not fit together is a compile error naming
// the layer and the shapes. Layer names follow Caffe's numbering of weight layers (conv1, pool1,
// norm1, ..., fc6, drop6, fc8), which is exactly CaffeNet's; a network type may instead list
// its own names in a static `layer_names` array (zoo::VGG19 does: conv1_1, conv1_2, ...).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "core/layer.hpp"
#include "core/shape.hpp"
#include "core/type_list.hpp"
#include "layers/input.hpp"

namespace hcnn {

template <class T>
inline constexpr bool is_input = false;
template <int C, int H, int W>
inline constexpr bool is_input<Input<C, H, W>> = true;

// Caffe's naming rule, compiled once for every network: names[i] is prefixes[i] followed by
// the number of weight layers in [0, i].
inline void name_by_weight_layers(std::span<const std::string_view> prefixes, std::span<const bool> is_weight_layer,
                                  std::span<std::string> names) {
  int weight_index = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (is_weight_layer[i]) ++weight_index;
    names[i] = std::string(prefixes[i]) + std::to_string(weight_index);
  }
}

template <class InputT, class... Layers>
struct Net {
  static_assert(is_input<InputT>, "Net: the first element must be Input<C, H, W>");
  static_assert(sizeof...(Layers) > 0, "Net: a network needs at least one layer after its Input");
  static_assert((LayerSpec<Layers> && ...),
                "Net: every element after the Input must be a layer template (Conv, FC, MaxPool, ...)");

  using input = InputT;
  using layer_list = TypeList<Layers...>;
  static constexpr std::size_t depth = sizeof...(Layers);
  static constexpr Shape input_shape = InputT::shape;

  template <std::size_t I>
  using layer = type_at<I, Layers...>;

  // The shape entering layer I; shape_before<depth>() is the network's output.
  template <std::size_t I>
  static consteval Shape shape_before() {
    if constexpr (I == 0) {
      return input_shape;
    } else {
      return checked_output<I - 1, layer<I - 1>, shape_before<I - 1>()>();
    }
  }
  static constexpr Shape output_shape = shape_before<depth>();

  static constexpr std::size_t weight_layers = (std::size_t{Layers::weight_layer} + ...);
  static constexpr std::array<bool, depth> is_weight_layer{Layers::weight_layer...};

  // Caffe-style default names: the n-th weight layer is conv<n>, fc<n>; a pooling, LRN or
  // dropout layer takes the number of the weight layer before it (pool1, norm1, drop6).
  static std::array<std::string, depth> default_names() {
    static constexpr std::array<std::string_view, depth> prefixes{Layers::name_prefix...};
    std::array<std::string, depth> names;
    name_by_weight_layers(prefixes, is_weight_layer, names);
    return names;
  }

 private:
  // A separate step per layer so that a failing shape rule shows "Index = I; Layer = ...; In =
  // Shape{...}" in the compiler's instantiation trace. Each layer's own static_asserts rule out
  // a zero-sized output (positive sizes, a kernel or window that fits its padded input).
  template <std::size_t Index, class Layer, Shape In>
  static consteval Shape checked_output() {
    return Layer::template output<In>();
  }
};

template <class N>
concept NetSpec = requires {
  typename N::layer_list;
  { N::depth } -> std::convertible_to<std::size_t>;
  { N::input_shape } -> std::convertible_to<Shape>;
  { N::output_shape } -> std::convertible_to<Shape>;
};

// The names of a network's layers: its own `layer_names` if it lists them, else Caffe's rule.
template <NetSpec N>
std::array<std::string, N::depth> layer_names() {
  if constexpr (requires { N::layer_names; }) {
    static_assert(N::layer_names.size() == N::depth, "Net: layer_names must name every layer");
    std::array<std::string, N::depth> names;
    for (std::size_t i = 0; i < N::depth; ++i) names[i] = std::string(N::layer_names[i]);
    return names;
  } else {
    return N::default_names();
  }
}

// Parameter and multiply-add totals, computed at compile time.
template <NetSpec N>
consteval std::int64_t param_count() {
  return []<std::size_t... I>(std::index_sequence<I...>) {
    return (std::int64_t{0} + ... +
            N::template layer<I>::template param_count<N::template shape_before<I>()>());
  }(std::make_index_sequence<N::depth>{});
}
template <NetSpec N>
consteval std::int64_t mac_count() {
  return []<std::size_t... I>(std::index_sequence<I...>) {
    return (std::int64_t{0} + ... + N::template layer<I>::template macs<N::template shape_before<I>()>());
  }(std::make_index_sequence<N::depth>{});
}

// The index of the last weight layer (the classifier), or depth if there is none.
template <NetSpec N>
consteval std::size_t last_weight_layer_index() {
  std::size_t last = N::depth;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((N::template layer<I>::weight_layer ? last = I : last), ...);
  }(std::make_index_sequence<N::depth>{});
  return last;
}

// The index of N's k-th weight layer counted from the top: where N is cut when its top k weight
// layers go, and where training starts when its top k train. depth for k = 0; 0 when N has
// fewer than k weight layers.
template <NetSpec N>
constexpr std::size_t top_weight_layer_index(std::size_t k) {
  if (k == 0) return N::depth;
  std::size_t seen = 0;
  for (std::size_t i = N::depth; i-- > 0;)
    if (N::is_weight_layer[i] && ++seen == k) return i;
  return 0;
}

// Layer I of a LayerList, tagged with its index so that two equal layers stay distinct bases.
template <std::size_t I, class Layer>
struct IndexedLayer {
  Layer layer;
};

// The bound layers of a model, each a direct base of one flat struct. A std::tuple nests one
// base per element, and GCC compiles its constructors and destructors as chains that inline
// into one another (16 destructors of the experiment's combination, each holding the rest of
// its chain): flat, they are one linear sequence.
template <class Seq, class... Layers>
struct LayerList;
template <std::size_t... I, class... Layers>
struct LayerList<std::index_sequence<I...>, Layers...> : IndexedLayer<I, Layers>... {
  template <std::size_t J>
  using type = type_at<J, Layers...>;

  template <std::size_t J>
  type<J>& get() {
    return static_cast<IndexedLayer<J, type<J>>&>(*this).layer;
  }
  template <std::size_t J>
  const type<J>& get() const {
    return static_cast<const IndexedLayer<J, type<J>>&>(*this).layer;
  }
};

// The bound layers a model of N on Backend with element type T holds.
template <NetSpec N, class T, class Backend, class Seq = std::make_index_sequence<N::depth>>
struct BoundLayers;
template <NetSpec N, class T, class Backend, std::size_t... I>
struct BoundLayers<N, T, Backend, std::index_sequence<I...>> {
  using type =
      LayerList<std::index_sequence<I...>, LayerImpl<typename N::template layer<I>, N::template shape_before<I>(), T, Backend>...>;
};

}  // namespace hcnn
