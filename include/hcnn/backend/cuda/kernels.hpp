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
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

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

void pool_forward(const PoolGeometry& g, const float* in, float* out, cudaStream_t stream);
// din is overwritten.
void pool_backward(const PoolGeometry& g, const float* in, const float* dout, float* din, cudaStream_t stream);

// out_i = mask_i ? in_i * scale : 0 with mask_i = (draw i of pass `step` >= threshold).
void dropout_forward(const float* in, float* out, std::uint8_t* mask, std::size_t count, std::uint64_t key,
                     Scalar<std::uint64_t> step, std::uint32_t threshold, float scale, cudaStream_t stream);
void dropout_backward(const float* dout, const std::uint8_t* mask, float* din, std::size_t count, float scale,
                      cudaStream_t stream);

// dz = (p - onehot(labels)) / n for n rows of `classes` probabilities; labels in device memory.
void softmax_cross_entropy_gradient(const float* p, const int* labels, float* dz, int n, int classes,
                                    cudaStream_t stream);

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

}  // namespace hcnn::cuda::kernels
