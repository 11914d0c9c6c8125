// hcnn/layers/dropout.hpp — Dropout<P>: inverted dropout, as Caffe implements it.
//
// In training each value is kept with probability 1 - P and scaled by 1/(1 - P); in testing
// the layer is the identity, so no rescaling is needed at inference.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "../core/layer.hpp"
#include "../core/philox.hpp"

namespace hcnn {

template <float P = 0.5f>
struct Dropout : ShapePreservingSpec {
  static_assert(P >= 0.0f && P < 1.0f, "Dropout: the drop probability must be in [0, 1)");

  static constexpr std::string_view kind = "Dropout";
  static constexpr std::string_view name_prefix = "drop";
  static constexpr float probability = P;

  static std::string describe() { return "p " + short_float(P); }
};

// What Dropout's implementations on every backend share: the layer's counter-based stream
// (core/philox.hpp), keyed from the model's seed when the layer is filled, which checkpoints
// save. Both backends draw a pass's masks from it alike.
template <class T, class Backend>
struct DropoutStream : NoParams<T, Backend> {
  void fill(Rng& rng, const Init&, bool) { stream_ = {rng.next(), 0}; }
  CounterStream& stream() { return stream_; }

 protected:
  CounterStream stream_{};
};

}  // namespace hcnn
