// hcnn/backend/cuda/dropout.hpp — inverted dropout on the GPU, with the CPU backend's masks:
// both draw from the layer's counter-based stream (core/philox.hpp), so a training step with
// dropout is the same on either backend.
#pragma once

#include <cstdint>

#include "../../core/layer.hpp"
#include "../../core/philox.hpp"
#include "../../layers/dropout.hpp"
#include "activation.hpp"
#include "buffer.hpp"
#include "kernels.hpp"
#include "launch_values.hpp"

namespace hcnn {

template <float P, Shape In, cuda::CudaElement T>
struct LayerImpl<Dropout<P>, In, T, Cuda> : DropoutStream<T, Cuda> {
  using spec = Dropout<P>;
  static constexpr Shape out_shape = In;
  static constexpr float scale = 1.0f / (1.0f - P);

  std::size_t workspace_bytes(int, Pass) const { return 0; }

  void forward(const T* in, T* out, int n, Mode mode, T*) {
    const std::size_t count = std::size_t(n) * In.size();
    training_ = mode == Mode::train && P > 0.0f;
    if (!training_) {
      copy_values(Cuda{}, in, count, out);
      return;
    }
    mask_.ensure(count);
    cuda::kernels::dropout_forward(in, out, mask_.data(), count, this->stream_.key,
                                   cuda::launch_counter(this->stream_.step), keep_threshold(P), scale,
                                   cuda::context().stream());
    ++this->stream_.step;
  }

  void backward(const T*, const T*, T* dout, T* din, int n, T*) {
    if (din == nullptr) return;
    const std::size_t count = std::size_t(n) * In.size();
    if (!training_) {
      copy_values(Cuda{}, dout, count, din);
      return;
    }
    cuda::kernels::dropout_backward(dout, mask_.data(), din, count, scale, cuda::context().stream());
  }

 private:
  Buffer<std::uint8_t, Cuda> mask_;
  bool training_ = false;
};

}  // namespace hcnn
