// hcnn/backend/cpu/dropout.hpp — inverted dropout on the CPU.
//
// The masks come from the layer's counter-based stream (core/philox.hpp): training pass s keeps
// value i when draw i of pass s reaches the keep threshold, the same decision the Cuda backend
// makes, whatever the thread count (so large layers draw their blocks on parallel threads).
// The mask of the last training pass is kept (one byte per value) for the backward pass; it
// grows once per batch size.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../../core/layer.hpp"
#include "../../core/philox.hpp"
#include "../../layers/dropout.hpp"

namespace hcnn {

template <float P, Shape In, class T>
struct LayerImpl<Dropout<P>, In, T, Cpu> : DropoutStream<T, Cpu> {
  using spec = Dropout<P>;
  static constexpr Shape out_shape = In;

  std::size_t workspace_bytes(int, Pass) const { return 0; }

  void forward(const T* in, T* out, int n, Mode mode, T*) {
    const std::size_t count = std::size_t(n) * In.size();
    training_ = mode == Mode::train && P > 0.0f;
    if (!training_) {
      std::copy(in, in + count, out);
      return;
    }
    mask_.ensure(count);
    const T scale = T(1) / (T(1) - T(P));
    constexpr std::uint32_t threshold = keep_threshold(P);
    const std::size_t blocks = (count + 3) / 4;
#pragma omp parallel for schedule(static) if (count > 65536)
    for (std::size_t block = 0; block < blocks; ++block) {
      const Philox4x32 draws = counter_block(this->stream_.key, this->stream_.step, block);
      for (std::size_t j = 0; j < 4 && block * 4 + j < count; ++j) {
        const std::size_t i = block * 4 + j;
        mask_[i] = draws.v[j] >= threshold;
        out[i] = mask_[i] ? in[i] * scale : T{0};
      }
    }
    ++this->stream_.step;
  }

  void backward(const T*, const T*, T* dout, T* din, int n, T*) {
    if (din == nullptr) return;
    const std::size_t count = std::size_t(n) * In.size();
    if (!training_) {
      std::copy(dout, dout + count, din);
      return;
    }
    const T scale = T(1) / (T(1) - T(P));
#pragma omp parallel for simd schedule(static) if (count > 65536)
    for (std::size_t i = 0; i < count; ++i) din[i] = mask_[i] ? dout[i] * scale : T{0};
  }

 private:
  Buffer<std::uint8_t, Cpu> mask_;
  bool training_ = false;
};

}  // namespace hcnn
