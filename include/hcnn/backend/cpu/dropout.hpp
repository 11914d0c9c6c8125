// hcnn/backend/cpu/dropout.hpp — inverted dropout on the CPU.
//
// The mask of the last training forward pass is kept (one byte per value) for the backward
// pass; it grows once per batch size. Masks come from the layer's own seeded stream, so a run
// with the same seed drops the same units.
#pragma once

#include <cstdint>

#include "../../core/layer.hpp"
#include "../../layers/dropout.hpp"

namespace hcnn {

template <float P, Shape In, class T>
struct LayerImpl<Dropout<P>, In, T, Cpu> : NoParams<T, Cpu> {
  using spec = Dropout<P>;
  static constexpr Shape out_shape = In;

  std::size_t workspace_bytes(int, Pass) const { return 0; }

  void fill(Rng& rng, const Init&, bool) { rng_ = Rng(rng.next()); }
  Rng& rng() { return rng_; }

  void forward(const T* in, T* out, int n, Mode mode, T*) {
    const std::size_t count = std::size_t(n) * In.size();
    training_ = mode == Mode::train && P > 0.0f;
    if (!training_) {
      std::copy(in, in + count, out);
      return;
    }
    mask_.ensure(count);
    const T scale = T(1) / (T(1) - T(P));
    for (std::size_t i = 0; i < count; ++i) {
      mask_[i] = rng_.uniform() >= double(P);
      out[i] = mask_[i] ? in[i] * scale : T{0};
    }
  }

  void backward(const T*, const T*, T* dout, T* din, int n, T*) {
    if (din == nullptr) return;
    const std::size_t count = std::size_t(n) * In.size();
    if (!training_) {
      std::copy(dout, dout + count, din);
      return;
    }
    const T scale = T(1) / (T(1) - T(P));
    for (std::size_t i = 0; i < count; ++i) din[i] = mask_[i] ? dout[i] * scale : T{0};
  }

 private:
  Rng rng_{};
  Buffer<std::uint8_t, Cpu> mask_;
  bool training_ = false;
};

}  // namespace hcnn
