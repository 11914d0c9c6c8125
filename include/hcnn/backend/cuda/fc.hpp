// hcnn/backend/cuda/fc.hpp — FC and Softmax on the GPU: cuBLAS GEMMs over the whole batch.
//
// hcnn's matrices are row-major and cuBLAS's column-major, so each row-major product is
// written as its transpose: Y (n x Out) = X W^T is Y^T = W X^T, i.e. cuBLAS's
// C (Out x n) = op(A = W as In x Out)^T * B (X as In x n).
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <span>

#include "../../core/layer.hpp"
#include "../../layers/fc.hpp"
#include "../../layers/softmax.hpp"
#include "activation.hpp"
#include "buffer.hpp"
#include "cudnn.hpp"
#include "element.hpp"
#include "kernels.hpp"

namespace hcnn {
namespace cuda {

// C (m x n) = op(A) op(B) in cuBLAS's column-major terms, overwritten; bf16 operands are
// multiplied with float accumulation (CUBLAS_COMPUTE_32F).
template <CudaElement T>
void gemm(cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k, const T* a, int lda, const T* b, int ldb,
          T* c, int ldc) {
  const float one = 1.0f, zero = 0.0f;
  if constexpr (std::same_as<T, float>) {
    HCNN_CUBLAS_CHECK(cublasSgemm(context().cublas(), op_a, op_b, m, n, k, &one, a, lda, b, ldb, &zero, c, ldc));
  } else {
    HCNN_CUBLAS_CHECK(cublasGemmEx(context().cublas(), op_a, op_b, m, n, k, &one, a, CUDA_R_16BF, lda, b, CUDA_R_16BF,
                                   ldb, &zero, c, CUDA_R_16BF, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }
}

template <int Out, Shape In, CudaElement T>
struct InnerProduct {
  static constexpr int inputs = static_cast<int>(In.size());

  std::array<Param<T, Cuda>, 2> params_ = make_params<InnerProductSpec<Out>, In, T, Cuda>();

  void fill(Rng& rng, const Init& init, bool last) { fill_weight_and_bias(params_[0], params_[1], rng, init, last); }

  // Y (n x Out) = X (n x In) W^T + b.
  void forward(const T* in, T* out, int n) const {
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, Out, n, inputs, params_[0].value.data(), inputs, in, inputs, out, Out);
    add_bias(params_[1].value.data(), out, n, Out, 1);
  }

  // dout is the gradient with respect to the pre-activation output.
  void backward(const T* in, const T* dout, T* din, int n) {
    // dW (Out x In) = dY^T X, i.e. dW^T (In x Out) = X^T dY.
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, inputs, Out, n, in, inputs, dout, Out, params_[0].grad.data(), inputs);
    bias_gradient(dout, params_[1].grad.data(), n, Out, 1);
    // dX (n x In) = dY W, i.e. dX^T (In x n) = W^T dY^T.
    if (din != nullptr)
      gemm(CUBLAS_OP_N, CUBLAS_OP_N, inputs, n, Out, params_[0].value.data(), inputs, dout, Out, din, inputs);
  }
};

}  // namespace cuda

template <int Out, class Act, Shape In, cuda::CudaElement T>
struct LayerImpl<FC<Out, Act>, In, T, Cuda> : cuda::InnerProduct<Out, In, T> {
  using spec = FC<Out, Act>;
  using backend = Cuda;
  static constexpr Shape out_shape = spec::template output<In>();

  std::span<Param<T, Cuda>> params() { return this->params_; }
  std::size_t workspace_bytes(int, Pass) const { return 0; }

  void forward(const T* in, T* out, int n, Mode, T*) const {
    cuda::InnerProduct<Out, In, T>::forward(in, out, n);
    cuda::activate<Act>(out, std::size_t(n) * Out);
  }
  void backward(const T* in, const T* out, T* dout, T* din, int n, T*) {
    cuda::activate_backward<Act>(out, dout, std::size_t(n) * Out);
    cuda::InnerProduct<Out, In, T>::backward(in, dout, din, n);
  }
};

template <int N, Shape In, cuda::CudaElement T>
struct LayerImpl<Softmax<N>, In, T, Cuda> : cuda::InnerProduct<N, In, T> {
  using spec = Softmax<N>;
  using backend = Cuda;
  static constexpr Shape out_shape = spec::template output<In>();
  static constexpr bool storage_only = !std::same_as<T, float>;  // bf16: the softmax runs on float copies

  std::span<Param<T, Cuda>> params() { return this->params_; }
  // The logits (forward) or their gradient (backward); for bf16, three float arrays after them.
  std::size_t workspace_bytes(int n, Pass) const {
    const std::size_t count = std::size_t(n) * N;
    return storage_only ? cuda::float_slots_bytes(count * sizeof(T), count, 3) : count * sizeof(T);
  }

  void forward(const T* in, T* out, int n, Mode, T* ws) const {
    cuda::InnerProduct<N, In, T>::forward(in, ws, n);
    if constexpr (storage_only) {
      const std::size_t count = std::size_t(n) * N;
      float* logits = cuda::float_slot(ws, count * sizeof(T), count, 0);
      float* p = cuda::float_slot(ws, count * sizeof(T), count, 1);
      const cudaStream_t stream = cuda::context().stream();
      cuda::kernels::widen(ws, logits, count, stream);
      cuda::dnn::softmax_forward(logits, p, n, N);
      cuda::kernels::narrow(p, out, count, stream);
    } else {
      cuda::dnn::softmax_forward(ws, out, n, N);
    }
  }

  // General backward through the softmax Jacobian: dz = p * (dp - <dp, p>).
  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    if constexpr (storage_only) {
      const std::size_t count = std::size_t(n) * N;
      float* p = cuda::float_slot(ws, count * sizeof(T), count, 0);
      float* dp = cuda::float_slot(ws, count * sizeof(T), count, 1);
      float* dz = cuda::float_slot(ws, count * sizeof(T), count, 2);
      const cudaStream_t stream = cuda::context().stream();
      cuda::kernels::widen(out, p, count, stream);
      cuda::kernels::widen(dout, dp, count, stream);
      cuda::dnn::softmax_backward(p, dp, dz, n, N);
      cuda::kernels::narrow(dz, ws, count, stream);
    } else {
      cuda::dnn::softmax_backward(out, dout, ws, n, N);
    }
    cuda::InnerProduct<N, In, T>::backward(in, ws, din, n);
  }

  // Fused softmax + mean cross-entropy: dz = (p - onehot(label)) / n. `labels` is host memory
  // (checked by the model), copied to the device here.
  void backward_from_labels(const T* in, const T* out, const int* labels, T* din, int n, T* ws) {
    labels_.copy_from_host(labels, std::size_t(n));
    cuda::kernels::softmax_cross_entropy_gradient(out, labels_.data(), ws, n, N, cuda::context().stream());
    cuda::InnerProduct<N, In, T>::backward(in, ws, din, n);
  }

 private:
  Buffer<int, Cuda> labels_;
};

}  // namespace hcnn
