// hcnn/backend/cuda/fc.hpp — FC and Softmax on the GPU: cuBLAS GEMMs over the whole batch.
//
// hcnn's matrices are row-major and cuBLAS's column-major, so each row-major product is
// written as its transpose: Y (n x Out) = X W^T is Y^T = W X^T, i.e. cuBLAS's
// C (Out x n) = op(A = W as In x Out)^T * B (X as In x n).
#pragma once

#include <array>
#include <span>

#include "../../core/layer.hpp"
#include "../../layers/fc.hpp"
#include "../../layers/softmax.hpp"
#include "activation.hpp"
#include "buffer.hpp"
#include "cudnn.hpp"
#include "kernels.hpp"

namespace hcnn {
namespace cuda {

template <int Out, Shape In, CudaElement T>
struct InnerProduct {
  static constexpr int inputs = static_cast<int>(In.size());

  std::array<Param<T, Cuda>, 2> params_ = make_params<InnerProductSpec<Out>, In, T, Cuda>();

  void fill(Rng& rng, const Init& init, bool last) { fill_weight_and_bias(params_[0], params_[1], rng, init, last); }

  // Y (n x Out) = X (n x In) W^T + b.
  void forward(const T* in, T* out, int n) const {
    const float one = 1.0f, zero = 0.0f;
    HCNN_CUBLAS_CHECK(cublasSgemm(context().cublas(), CUBLAS_OP_T, CUBLAS_OP_N, Out, n, inputs, &one,
                                  params_[0].value.data(), inputs, in, inputs, &zero, out, Out));
    dnn::add_bias(params_[1].value.data(), out, n, Out);
  }

  // dout is the gradient with respect to the pre-activation output.
  void backward(const T* in, const T* dout, T* din, int n) {
    const float one = 1.0f, zero = 0.0f;
    const cublasHandle_t handle = context().cublas();
    // dW (Out x In) = dY^T X, i.e. dW^T (In x Out) = X^T dY.
    HCNN_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, inputs, Out, n, &one, in, inputs, dout, Out, &zero,
                                  params_[0].grad.data(), inputs));
    dnn::bias_gradient(dout, params_[1].grad.data(), n, Out, 1, 1);
    // dX (n x In) = dY W, i.e. dX^T (In x n) = W^T dY^T.
    if (din != nullptr)
      HCNN_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, inputs, n, Out, &one, params_[0].value.data(),
                                    inputs, dout, Out, &zero, din, inputs));
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

  std::span<Param<T, Cuda>> params() { return this->params_; }
  // The logits (forward) or their gradient (backward).
  std::size_t workspace_bytes(int n, Pass) const { return std::size_t(n) * N * sizeof(T); }

  void forward(const T* in, T* out, int n, Mode, T* ws) const {
    cuda::InnerProduct<N, In, T>::forward(in, ws, n);
    cuda::dnn::softmax_forward(ws, out, n, N);
  }

  // General backward through the softmax Jacobian: dz = p * (dp - <dp, p>).
  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    cuda::dnn::softmax_backward(out, dout, ws, n, N);
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
