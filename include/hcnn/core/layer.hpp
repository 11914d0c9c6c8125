// hcnn/core/layer.hpp — what a layer template is, and the seam between layers and backends.
//
// A layer *spec* (Conv<...>, MaxPool<...>, ...) is an empty type that knows its shape rule,
// its parameter and multiply-add counts and its Caffe name prefix. A *bound* layer,
// LayerImpl<Spec, In, T, Backend>, is the spec placed at input shape In, computing in element
// type T on a backend; backend/cpu/ and backend/cuda/ specialise it. Networks only use the
// bound layer through the members named in the BoundLayer concept below.
#pragma once

#include <array>
#include <concepts>
#include <cstdio>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "backend.hpp"
#include "filler.hpp"
#include "param.hpp"
#include "shape.hpp"

namespace hcnn {

template <class Spec, Shape In, class T, class Backend>
struct LayerImpl;  // specialised per layer and backend

template <class L>
concept LayerSpec = requires {
  { L::kind } -> std::convertible_to<std::string_view>;
  { L::name_prefix } -> std::convertible_to<std::string_view>;
  { L::weight_layer } -> std::convertible_to<bool>;
  { L::describe() } -> std::convertible_to<std::string>;
};

// Which pass a layer's scratch memory is for: backward may need more than forward (a
// convolution's per-lane weight-gradient partials).
enum class Pass { forward, backward };

// Everything a network calls on a bound layer. `din` may be null: the layer then skips the
// input gradient (the first layer of a network rarely needs it). Parameter gradients are
// overwritten with this batch's gradient, not accumulated. A layer with a random stream
// (dropout) also offers `CounterStream& stream()`, so checkpoints can save where it stands.
// `workspace_bytes(n, pass)` is the scratch memory `ws` must offer for a pass over n samples,
// asked of the bound layer at run time (a GPU layer's depends on the algorithm it picked).
template <class B, class T>
concept BoundLayer = requires(B b, const B& cb, const T* in, const T* out, T* dout, T* din, T* ws, int n, Rng& rng,
                              const Init& init, bool last) {
  { cb.workspace_bytes(n, Pass::forward) } -> std::convertible_to<std::size_t>;
  b.forward(in, dout, n, Mode::test, ws);
  b.backward(in, out, dout, din, n, ws);
  { b.params() } -> std::convertible_to<std::span<Param<T, typename B::backend>>>;
  b.fill(rng, init, last);
};

// A bound layer whose backward may be given one buffer as both dout and din declares
// `static constexpr bool input_gradient_in_place = true`; Model then keeps the gradients of
// its input and output in one buffer (VGG-19's 3x3 convolutions: 308 MB less at batch 32).
template <class B>
concept InPlaceInputGradient = requires { requires B::input_gradient_in_place; };

// How many T hold a layer's workspace for either pass over n samples (at least one).
template <class T, class L>
[[nodiscard]] std::size_t workspace_elements(const L& layer, int n) {
  const std::size_t bytes = std::max(layer.workspace_bytes(n, Pass::forward), layer.workspace_bytes(n, Pass::backward));
  return std::max<std::size_t>((bytes + sizeof(T) - 1) / sizeof(T), 1);
}

// A hyper-parameter in a layer's description: 0.5 -> "0.5", 1e-4 -> "0.0001".
inline std::string short_float(float value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", double(value));
  return text;
}

// A square window in a layer's description: "3x3", then "/stride" (always, or unless it is 1),
// then " pad p" unless it is 0. The layer specs' describe() are templates, one per layer type
// of a program; they pass their parameters to helpers like this one, so that the string
// handling is compiled once rather than once per layer type.
inline std::string window_text(int size, int stride, bool show_unit_stride, int pad) {
  std::string s = std::to_string(size) + "x" + std::to_string(size);
  if (stride != 1 || show_unit_stride) s += "/" + std::to_string(stride);
  if (pad != 0) s += " pad " + std::to_string(pad);
  return s;
}

// What layer specs without weights (pooling, LRN, dropout) share: no parameters, no
// multiply-adds counted (the paper counts weight layers).
struct WeightlessSpec {
  static constexpr bool weight_layer = false;
  template <Shape In>
  static constexpr std::int64_t param_count() {
    return 0;
  }
  template <Shape In>
  static constexpr std::int64_t macs() {
    return 0;
  }
};

// ... and of those, the ones that keep their input's shape (LRN, dropout).
struct ShapePreservingSpec : WeightlessSpec {
  template <Shape In>
  static consteval Shape output() {
    return In;
  }
};

// An inner product to Out values (FC, Softmax): a 1x1 map of Out channels, Out x In weights.
template <int Out>
struct InnerProductSpec {
  static constexpr bool weight_layer = true;
  template <Shape In>
  static consteval Shape output() {
    return {Out, 1, 1};
  }
  template <Shape In>
  static constexpr std::int64_t param_count() {
    return std::int64_t{Out} * In.size() + Out;
  }
  template <Shape In>
  static constexpr std::int64_t macs() {
    return std::int64_t{Out} * In.size();
  }
  template <Shape In>
  static constexpr std::array<BlobSpec, 2> blobs() {
    constexpr int inputs = static_cast<int>(In.size());
    return {BlobSpec{"weight", {Out, inputs, 1, 1}, 2, 1.0f, 1.0f, true, inputs},
            BlobSpec{"bias", {Out, 1, 1, 1}, 1, 2.0f, 0.0f}};
  }
};

// How a weight layer (convolution, inner product) initialises on any backend: the weights from
// the init's filler (the classifier's for the network's last weight layer), the bias constant.
template <class T, class Backend>
void fill_weight_and_bias(Param<T, Backend>& weight, Param<T, Backend>& bias, Rng& rng, const Init& init, bool last) {
  const Filler& filler = last ? init.classifier : init.weights;
  write_on_host(weight.value, [&](std::span<T> w) { filler.fill(w.data(), w.size(), weight.fan_in, rng); });
  bias.value.fill(T(init.bias));
}

// Layers without parameters share this empty implementation of the parameter members.
template <class T, class Backend>
struct NoParams {
  using backend = Backend;
  std::span<Param<T, Backend>> params() { return {}; }
  void fill(Rng&, const Init&, bool) {}
};

}  // namespace hcnn
