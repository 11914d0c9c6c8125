// hcnn/backend/cuda/kernels.hpp — the few GPU kernels cuDNN and cuBLAS cannot express.
//
// They are the only code of hcnn that nvcc compiles (src/cuda/kernels.cu, built into the
// hcnn::cuda target), so that a program using the Cuda backend still compiles with its own
// C++ compiler. They take run-time shapes (a handful of kernels serve every layer) and are
// enqueued on the given stream; none synchronises.
//
// - Pooling with Caffe's windows: ceil rounding, max windows clipped to the image, average
//   windows divided by the window clipped at H + pad (cuDNN rounds down and divides otherwise).
//   The backward passes gather (each input cell sums the windows that cover it), so they are
//   deterministic, and max pooling recomputes each window's argmax (first maximum wins), as the
//   CPU backend does.
// - Dropout from the counter-based stream (core/philox.hpp): the CPU's masks, bit for bit.
// - The fused softmax + cross-entropy gradient, BatchNorm's Caffe moving sums, and the SGD step.
// - For BF16 storage (element.hpp), what cuDNN's float calls do for float tensors: bias,
//   ReLU, conversions to and from float, and the update of FP32 master weights.
// Templates on the element type T are compiled for float and bf16.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "element.hpp"

namespace hcnn::cuda::kernels {

// A scalar argument that may change between launches of a captured graph (a dropout layer's
// step, the solver's learning rate): its value now and, while a graph is being captured
// (graph.hpp), the device slot from which each launch of the graph reads its value.
template <class V>
struct Scalar {
  V value;
  const V* slot = nullptr;
#if defined(__CUDACC__)
  __device__ V get() const { return slot != nullptr ? *slot : value; }
#endif
};

struct PoolGeometry {
  int planes;  // samples x channels
  int in_h, in_w, out_h, out_w;
  int kernel, stride, pad;
  bool is_max;
};

template <class T>
void pool_forward(const PoolGeometry& g, const T* in, T* out, cudaStream_t stream);
// din is overwritten.
template <class T>
void pool_backward(const PoolGeometry& g, const T* in, const T* dout, T* din, cudaStream_t stream);

// out_i = mask_i ? in_i * scale : 0 with mask_i = (draw i of pass `step` >= threshold).
template <class T>
void dropout_forward(const T* in, T* out, std::uint8_t* mask, std::size_t count, std::uint64_t key,
                     Scalar<std::uint64_t> step, std::uint32_t threshold, float scale, cudaStream_t stream);
template <class T>
void dropout_backward(const T* dout, const std::uint8_t* mask, T* din, std::size_t count, float scale,
                      cudaStream_t stream);

// dz = (p - onehot(labels)) / n for n rows of `classes` probabilities; labels in device memory.
template <class T>
void softmax_cross_entropy_gradient(const T* p, const int* labels, T* dz, int n, int classes, cudaStream_t stream);

// Caffe's moving sums after a training pass: sum <- maf * sum + batch value (mean, and the
// unbiased variance) per channel, factor <- maf * factor + 1.
void batch_norm_moving_sums(float* mean_sum, float* var_sum, float* factor, const float* batch_mean,
                            const float* batch_var, int channels, float maf, cudaStream_t stream);
// The statistics inference normalises with: sum / factor (zero while factor is zero, as Caffe).
void batch_norm_statistics(const float* mean_sum, const float* var_sum, const float* factor, float* mean, float* var,
                           int channels, cudaStream_t stream);
// Backward through a BatchNorm that normalised with fixed statistics (test mode, a frozen
// layer): scale_grad = sum dy * x_hat, bias_grad = sum dy, dx = scale * inv_std * dy (if dx).
void batch_norm_backward_fixed(const float* x, const float* dy, const float* scale, const float* mean,
                               const float* var, float eps, float* scale_grad, float* bias_grad, float* dx, int n,
                               int channels, int plane, cudaStream_t stream);

// v <- momentum * v + rate * (g + decay * w); w <- w - v, with rate = lr * lr_mult and
// decay = weight_decay * decay_mult (the products the CPU's solver forms).
void sgd_update(float* w, const float* g, float* v, std::size_t n, Scalar<float> lr, Scalar<float> momentum,
                Scalar<float> weight_decay, float lr_mult, float decay_mult, cudaStream_t stream);
// The same on FP32 master weights of BF16 ones (w <- bf16(master)). A master whose rounding
// is not w (w written since the last update, or a zero-filled master) is first set to w.
void sgd_update(bf16* w, const bf16* g, float* v, float* master, std::size_t n, Scalar<float> lr,
                Scalar<float> momentum, Scalar<float> weight_decay, float lr_mult, float decay_mult,
                cudaStream_t stream);

// y[s, c, j] += bias[c] for n samples of `channels` planes of `plane` values.
void add_bias(const bf16* bias, bf16* y, int n, int channels, int plane, cudaStream_t stream);
// dbias[c] = the sum of dy[s, c, j] over samples and positions (in float).
void bias_gradient(const bf16* dy, bf16* dbias, int n, int channels, int plane, cudaStream_t stream);
// y = max(y, 0) in place; dy *= (y > 0) in place.
void relu_forward(bf16* y, std::size_t count, cudaStream_t stream);
void relu_backward(const bf16* y, bf16* dy, std::size_t count, cudaStream_t stream);
// Conversions (narrow rounds to nearest even).
void widen(const bf16* in, float* out, std::size_t count, cudaStream_t stream);
void narrow(const float* in, bf16* out, std::size_t count, cudaStream_t stream);
// Float copies of bf16 layer state (BatchNorm's moving sums): each copy whose rounding is no
// longer its stored value (written from outside since) is set to that value.
void follow_storage(const bf16* stored, float* copy, std::size_t count, cudaStream_t stream);

}  // namespace hcnn::cuda::kernels
