// hcnn/backend/cuda/lrn.hpp — Caffe's across-channel LRN on the GPU, by cuDNN's LRN, which
// computes Caffe's formula given Caffe's alpha (it divides by the window size itself). A bf16
// layer runs it on float copies of its operands, in its workspace.
#pragma once

#include <concepts>
#include <cstddef>

#include "../../core/layer.hpp"
#include "../../layers/lrn.hpp"
#include "activation.hpp"
#include "cudnn.hpp"
#include "element.hpp"
#include "kernels.hpp"

namespace hcnn {

template <int Size, float Alpha, float Beta, float K, Shape In, cuda::CudaElement T>
struct LayerImpl<LRN<Size, Alpha, Beta, K>, In, T, Cuda> : NoParams<T, Cuda> {
  static_assert(Size <= CUDNN_LRN_MAX_N, "LRN on Cuda: cuDNN's window is at most 16 channels");
  static_assert(K >= CUDNN_LRN_MIN_K && Beta >= CUDNN_LRN_MIN_BETA, "LRN on Cuda: cuDNN needs k >= 1e-5, beta >= 0.01");
  using spec = LRN<Size, Alpha, Beta, K>;
  static constexpr Shape out_shape = In;
  static constexpr bool storage_only = !std::same_as<T, float>;

  // bf16: x, y, dy and dx as floats.
  std::size_t workspace_bytes(int n, Pass) const {
    return storage_only ? cuda::float_slots_bytes(0, std::size_t(n) * In.size(), 4) : 0;
  }

  void forward(const T* in, T* out, int n, Mode, T* ws) const {
    if constexpr (storage_only) {
      const std::size_t count = std::size_t(n) * In.size();
      float* x = cuda::float_slot(ws, 0, count, 0);
      float* y = cuda::float_slot(ws, 0, count, 1);
      cuda::kernels::widen(in, x, count, cuda::context().stream());
      lrn(n).forward(x, y);
      cuda::kernels::narrow(y, out, count, cuda::context().stream());
    } else {
      lrn(n).forward(in, out);
    }
  }
  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    if (din == nullptr) return;
    if constexpr (storage_only) {
      const std::size_t count = std::size_t(n) * In.size();
      float* x = cuda::float_slot(ws, 0, count, 0);
      float* y = cuda::float_slot(ws, 0, count, 1);
      float* dy = cuda::float_slot(ws, 0, count, 2);
      float* dx = cuda::float_slot(ws, 0, count, 3);
      const cudaStream_t stream = cuda::context().stream();
      cuda::kernels::widen(in, x, count, stream);
      cuda::kernels::widen(out, y, count, stream);
      cuda::kernels::widen(dout, dy, count, stream);
      lrn(n).backward(x, y, dy, dx);
      cuda::kernels::narrow(dx, din, count, stream);
    } else {
      lrn(n).backward(in, out, dout, din);
    }
  }

 private:
  static cuda::dnn::Lrn lrn(int n) { return {n, In.c, In.h, In.w, Size, Alpha, Beta, K}; }
};

}  // namespace hcnn
