// hcnn/backend/cuda/lrn.hpp — Caffe's across-channel LRN on the GPU, by cuDNN's LRN, which
// computes Caffe's formula given Caffe's alpha (it divides by the window size itself).
#pragma once

#include "../../core/layer.hpp"
#include "../../layers/lrn.hpp"
#include "activation.hpp"
#include "cudnn.hpp"

namespace hcnn {

template <int Size, float Alpha, float Beta, float K, Shape In, cuda::CudaElement T>
struct LayerImpl<LRN<Size, Alpha, Beta, K>, In, T, Cuda> : NoParams<T, Cuda> {
  static_assert(Size <= CUDNN_LRN_MAX_N, "LRN on Cuda: cuDNN's window is at most 16 channels");
  static_assert(K >= CUDNN_LRN_MIN_K && Beta >= CUDNN_LRN_MIN_BETA, "LRN on Cuda: cuDNN needs k >= 1e-5, beta >= 0.01");
  using spec = LRN<Size, Alpha, Beta, K>;
  static constexpr Shape out_shape = In;

  std::size_t workspace_bytes(int, Pass) const { return 0; }

  void forward(const T* in, T* out, int n, Mode, T*) const { lrn(n).forward(in, out); }
  void backward(const T* in, const T* out, T* dout, T* din, int n, T*) {
    if (din != nullptr) lrn(n).backward(in, out, dout, din);
  }

 private:
  static cuda::dnn::Lrn lrn(int n) { return {n, In.c, In.h, In.w, Size, Alpha, Beta, K}; }
};

}  // namespace hcnn
