// The Cuda backend's own kernels (include/hcnn/backend/cuda/kernels.hpp says what each does
// and why cuDNN or cuBLAS does not). Built by nvcc into the hcnn::cuda target. Each launch is
// checked at once (cudaGetLastError: a bad configuration); faults inside a kernel surface at the
// next checked call that waits for the stream.
#include <hcnn/backend/cuda/check.hpp>
#include <hcnn/backend/cuda/kernels.hpp>
#include <hcnn/core/philox.hpp>

#include <algorithm>

namespace hcnn::cuda::kernels {
namespace {

constexpr int threads = 256;

unsigned blocks_for(std::size_t count) { return static_cast<unsigned>((count + threads - 1) / threads); }

// Output cell (oh, ow)'s window, as Caffe clips it: [h0, h1) x [w0, w1) inside the image, and
// the divisor of an average window (its extent clipped at H + pad, before clipping at H).
struct Window {
  int h0, h1, w0, w1, divisor;
};

__device__ Window window_of(const PoolGeometry& g, int oh, int ow) {
  Window w{};
  w.h0 = oh * g.stride - g.pad;
  w.w0 = ow * g.stride - g.pad;
  w.h1 = min(w.h0 + g.kernel, g.is_max ? g.in_h : g.in_h + g.pad);
  w.w1 = min(w.w0 + g.kernel, g.is_max ? g.in_w : g.in_w + g.pad);
  w.divisor = (w.h1 - w.h0) * (w.w1 - w.w0);
  w.h0 = max(w.h0, 0);
  w.w0 = max(w.w0, 0);
  w.h1 = min(w.h1, g.in_h);
  w.w1 = min(w.w1, g.in_w);
  return w;
}

// The first maximum of a window in row-major order, as an index into the plane.
template <class T>
__device__ int argmax_of(const T* x, const Window& w, int in_w) {
  int best = w.h0 * in_w + w.w0;
  for (int h = w.h0; h < w.h1; ++h)
    for (int c = w.w0; c < w.w1; ++c)
      if (float(x[h * in_w + c]) > float(x[best])) best = h * in_w + c;
  return best;
}

// Elements load as float and store from float (BF16 storage: float arithmetic).
template <class T>
__global__ void pool_forward_kernel(PoolGeometry g, const T* in, T* out) {
  const std::size_t count = std::size_t(g.planes) * g.out_h * g.out_w;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const int ow = int(i % g.out_w), oh = int(i / g.out_w % g.out_h);
    const std::size_t plane = i / (std::size_t(g.out_w) * g.out_h);
    const T* x = in + plane * g.in_h * g.in_w;
    const Window w = window_of(g, oh, ow);
    if (g.is_max) {
      out[i] = x[argmax_of(x, w, g.in_w)];
    } else {
      float sum = 0.0f;
      for (int h = w.h0; h < w.h1; ++h)
        for (int c = w.w0; c < w.w1; ++c) sum += float(x[h * g.in_w + c]);
      out[i] = T(sum / float(w.divisor));
    }
  }
}

template <class T>
__global__ void pool_backward_kernel(PoolGeometry g, const T* in, const T* dout, T* din) {
  const std::size_t count = std::size_t(g.planes) * g.in_h * g.in_w;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const int col = int(i % g.in_w), row = int(i / g.in_w % g.in_h);
    const std::size_t plane = i / (std::size_t(g.in_w) * g.in_h);
    const T* x = in + plane * g.in_h * g.in_w;
    const T* dy = dout + plane * g.out_h * g.out_w;
    // The output cells whose windows start at most kernel-1 before this cell.
    const int oh0 = row + g.pad < g.kernel ? 0 : (row + g.pad - g.kernel) / g.stride + 1;
    const int ow0 = col + g.pad < g.kernel ? 0 : (col + g.pad - g.kernel) / g.stride + 1;
    const int oh1 = min((row + g.pad) / g.stride + 1, g.out_h);
    const int ow1 = min((col + g.pad) / g.stride + 1, g.out_w);
    const int here = row * g.in_w + col;
    float sum = 0.0f;
    for (int oh = oh0; oh < oh1; ++oh)
      for (int ow = ow0; ow < ow1; ++ow) {
        const Window w = window_of(g, oh, ow);
        if (row < w.h0 || row >= w.h1 || col < w.w0 || col >= w.w1) continue;
        if (g.is_max) {
          if (argmax_of(x, w, g.in_w) == here) sum += float(dy[oh * g.out_w + ow]);
        } else {
          sum += float(dy[oh * g.out_w + ow]) / float(w.divisor);
        }
      }
    din[i] = T(sum);
  }
}

// One thread per block of four values: one Philox call gives all four draws.
template <class T>
__global__ void dropout_forward_kernel(const T* in, T* out, std::uint8_t* mask, std::size_t count,
                                       std::uint64_t key, Scalar<std::uint64_t> pass, std::uint32_t threshold,
                                       float scale) {
  const std::size_t blocks = (count + 3) / 4;
  const std::uint64_t step = pass.get();
  for (std::size_t b = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; b < blocks;
       b += std::size_t(gridDim.x) * blockDim.x) {
    const Philox4x32 draws = counter_block(key, step, b);
    for (int j = 0; j < 4; ++j) {
      const std::size_t i = b * 4 + j;
      if (i >= count) break;
      const bool keep = draws.v[j] >= threshold;
      mask[i] = keep;
      out[i] = T(keep ? float(in[i]) * scale : 0.0f);
    }
  }
}

template <class T>
__global__ void dropout_backward_kernel(const T* dout, const std::uint8_t* mask, T* din, std::size_t count,
                                        float scale) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x)
    din[i] = T(mask[i] ? float(dout[i]) * scale : 0.0f);
}

template <class T>
__global__ void softmax_gradient_kernel(const T* p, const int* labels, T* dz, int n, int classes) {
  const std::size_t count = std::size_t(n) * classes;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const int sample = int(i / classes), k = int(i % classes);
    dz[i] = T((float(p[i]) - (labels[sample] == k ? 1.0f : 0.0f)) / float(n));
  }
}

__global__ void moving_sums_kernel(float* mean_sum, float* var_sum, float* factor, const float* batch_mean,
                                   const float* batch_var, int channels, float maf) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < channels) {
    mean_sum[c] = maf * mean_sum[c] + batch_mean[c];
    var_sum[c] = maf * var_sum[c] + batch_var[c];
  }
  if (c == 0) *factor = maf * *factor + 1.0f;
}

__global__ void statistics_kernel(const float* mean_sum, const float* var_sum, const float* factor, float* mean,
                                  float* var, int channels) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  const float k = *factor == 0.0f ? 0.0f : 1.0f / *factor;
  mean[c] = mean_sum[c] * k;
  var[c] = var_sum[c] * k;
}

// One block per channel; the sums are reduced in a fixed tree, so they are deterministic.
__global__ void batch_norm_fixed_kernel(const float* x, const float* dy, const float* scale, const float* mean,
                                        const float* var, float eps, float* scale_grad, float* bias_grad, float* dx,
                                        int n, int channels, int plane) {
  __shared__ float dy_sums[threads], dy_xhat_sums[threads];
  const int c = blockIdx.x;
  const float inv_std = rsqrtf(var[c] + eps);
  float dy_sum = 0.0f, dy_xhat_sum = 0.0f;
  const std::size_t per_channel = std::size_t(n) * plane;
  for (std::size_t j = threadIdx.x; j < per_channel; j += blockDim.x) {
    const std::size_t i = (j / plane * channels + c) * plane + j % plane;
    dy_sum += dy[i];
    dy_xhat_sum += dy[i] * (x[i] - mean[c]) * inv_std;
    if (dx != nullptr) dx[i] = scale[c] * inv_std * dy[i];
  }
  dy_sums[threadIdx.x] = dy_sum;
  dy_xhat_sums[threadIdx.x] = dy_xhat_sum;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) {
      dy_sums[threadIdx.x] += dy_sums[threadIdx.x + half];
      dy_xhat_sums[threadIdx.x] += dy_xhat_sums[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    scale_grad[c] = dy_xhat_sums[0];
    bias_grad[c] = dy_sums[0];
  }
}

__global__ void sgd_kernel(float* w, const float* g, float* v, std::size_t n, Scalar<float> lr, Scalar<float> momentum_of,
                           Scalar<float> weight_decay, float lr_mult, float decay_mult) {
  const float momentum = momentum_of.get();
  const float rate = lr.get() * lr_mult;
  const float decay = weight_decay.get() * decay_mult;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    v[i] = momentum * v[i] + rate * (g[i] + decay * w[i]);
    w[i] -= v[i];
  }
}

// y[s, c, j] += bias[c] over n samples of `channels` planes of `plane` values.
__global__ void add_bias_kernel(const bf16* bias, bf16* y, std::size_t count, int channels, int plane) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x)
    y[i] = bf16(float(y[i]) + float(bias[i / plane % channels]));
}

// One block per channel, summed in float in a fixed tree (deterministic).
__global__ void bias_gradient_kernel(const bf16* dy, bf16* dbias, int n, int channels, int plane) {
  __shared__ float sums[threads];
  const int c = blockIdx.x;
  float sum = 0.0f;
  const std::size_t per_channel = std::size_t(n) * plane;
  for (std::size_t j = threadIdx.x; j < per_channel; j += blockDim.x)
    sum += float(dy[(j / plane * channels + c) * plane + j % plane]);
  sums[threadIdx.x] = sum;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) sums[threadIdx.x] += sums[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) dbias[c] = bf16(sums[0]);
}

__global__ void relu_forward_kernel(bf16* y, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x)
    if (float(y[i]) <= 0.0f) y[i] = bf16(0.0f);  // NaN stays, as with cuDNN's CUDNN_PROPAGATE_NAN
}

__global__ void relu_backward_kernel(const bf16* y, bf16* dy, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x)
    if (!(float(y[i]) > 0.0f)) dy[i] = bf16(0.0f);
}

template <class From, class To>
__global__ void convert_kernel(const From* in, To* out, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x)
    out[i] = To(float(in[i]));
}

__global__ void follow_storage_kernel(const bf16* stored, float* copy, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x)
    if (__bfloat16_as_ushort(bf16(copy[i])) != __bfloat16_as_ushort(stored[i])) copy[i] = float(stored[i]);
}

// The update on the FP32 master copy of BF16 weights. A master whose rounding is no longer the
// weight (the weights were written since the last update: a checkpoint, copy_parameters) is
// taken afresh from the weight; zero-filled masters start that way.
__global__ void sgd_master_kernel(bf16* w, const bf16* g, float* v, float* master, std::size_t n, Scalar<float> lr,
                                  Scalar<float> momentum_of, Scalar<float> weight_decay, float lr_mult,
                                  float decay_mult) {
  const float momentum = momentum_of.get();
  const float rate = lr.get() * lr_mult;
  const float decay = weight_decay.get() * decay_mult;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    float m = master[i];
    if (__bfloat16_as_ushort(bf16(m)) != __bfloat16_as_ushort(w[i])) m = float(w[i]);
    v[i] = momentum * v[i] + rate * (float(g[i]) + decay * m);
    m -= v[i];
    master[i] = m;
    w[i] = bf16(m);
  }
}

// Grid-stride loops: enough blocks to fill the GPU, never more than the work needs.
unsigned grid_for(std::size_t count) { return std::max(1u, std::min(blocks_for(count), 65535u)); }

}  // namespace

template <class T>
void pool_forward(const PoolGeometry& g, const T* in, T* out, cudaStream_t stream) {
  const std::size_t count = std::size_t(g.planes) * g.out_h * g.out_w;
  pool_forward_kernel<<<grid_for(count), threads, 0, stream>>>(g, in, out);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

template <class T>
void pool_backward(const PoolGeometry& g, const T* in, const T* dout, T* din, cudaStream_t stream) {
  const std::size_t count = std::size_t(g.planes) * g.in_h * g.in_w;
  pool_backward_kernel<<<grid_for(count), threads, 0, stream>>>(g, in, dout, din);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

template <class T>
void dropout_forward(const T* in, T* out, std::uint8_t* mask, std::size_t count, std::uint64_t key,
                     Scalar<std::uint64_t> step, std::uint32_t threshold, float scale, cudaStream_t stream) {
  dropout_forward_kernel<<<grid_for((count + 3) / 4), threads, 0, stream>>>(in, out, mask, count, key, step,
                                                                             threshold, scale);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

template <class T>
void dropout_backward(const T* dout, const std::uint8_t* mask, T* din, std::size_t count, float scale,
                      cudaStream_t stream) {
  dropout_backward_kernel<<<grid_for(count), threads, 0, stream>>>(dout, mask, din, count, scale);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

template <class T>
void softmax_cross_entropy_gradient(const T* p, const int* labels, T* dz, int n, int classes, cudaStream_t stream) {
  softmax_gradient_kernel<<<grid_for(std::size_t(n) * classes), threads, 0, stream>>>(p, labels, dz, n, classes);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

void batch_norm_moving_sums(float* mean_sum, float* var_sum, float* factor, const float* batch_mean,
                            const float* batch_var, int channels, float maf, cudaStream_t stream) {
  moving_sums_kernel<<<blocks_for(std::size_t(channels)), threads, 0, stream>>>(mean_sum, var_sum, factor, batch_mean,
                                                                                 batch_var, channels, maf);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

void batch_norm_statistics(const float* mean_sum, const float* var_sum, const float* factor, float* mean, float* var,
                           int channels, cudaStream_t stream) {
  statistics_kernel<<<blocks_for(std::size_t(channels)), threads, 0, stream>>>(mean_sum, var_sum, factor, mean, var,
                                                                                channels);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

void batch_norm_backward_fixed(const float* x, const float* dy, const float* scale, const float* mean,
                               const float* var, float eps, float* scale_grad, float* bias_grad, float* dx, int n,
                               int channels, int plane, cudaStream_t stream) {
  batch_norm_fixed_kernel<<<unsigned(channels), threads, 0, stream>>>(x, dy, scale, mean, var, eps, scale_grad,
                                                                       bias_grad, dx, n, channels, plane);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

void sgd_update(float* w, const float* g, float* v, std::size_t n, Scalar<float> lr, Scalar<float> momentum,
                Scalar<float> weight_decay, float lr_mult, float decay_mult, cudaStream_t stream) {
  sgd_kernel<<<grid_for(n), threads, 0, stream>>>(w, g, v, n, lr, momentum, weight_decay, lr_mult, decay_mult);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

void add_bias(const bf16* bias, bf16* y, int n, int channels, int plane, cudaStream_t stream) {
  const std::size_t count = std::size_t(n) * channels * plane;
  add_bias_kernel<<<grid_for(count), threads, 0, stream>>>(bias, y, count, channels, plane);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

void bias_gradient(const bf16* dy, bf16* dbias, int n, int channels, int plane, cudaStream_t stream) {
  bias_gradient_kernel<<<unsigned(channels), threads, 0, stream>>>(dy, dbias, n, channels, plane);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

void relu_forward(bf16* y, std::size_t count, cudaStream_t stream) {
  relu_forward_kernel<<<grid_for(count), threads, 0, stream>>>(y, count);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

void relu_backward(const bf16* y, bf16* dy, std::size_t count, cudaStream_t stream) {
  relu_backward_kernel<<<grid_for(count), threads, 0, stream>>>(y, dy, count);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

void widen(const bf16* in, float* out, std::size_t count, cudaStream_t stream) {
  convert_kernel<<<grid_for(count), threads, 0, stream>>>(in, out, count);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

void narrow(const float* in, bf16* out, std::size_t count, cudaStream_t stream) {
  convert_kernel<<<grid_for(count), threads, 0, stream>>>(in, out, count);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

void follow_storage(const bf16* stored, float* copy, std::size_t count, cudaStream_t stream) {
  follow_storage_kernel<<<grid_for(count), threads, 0, stream>>>(stored, copy, count);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

void sgd_update(bf16* w, const bf16* g, float* v, float* master, std::size_t n, Scalar<float> lr,
                Scalar<float> momentum, Scalar<float> weight_decay, float lr_mult, float decay_mult,
                cudaStream_t stream) {
  sgd_master_kernel<<<grid_for(n), threads, 0, stream>>>(w, g, v, master, n, lr, momentum, weight_decay, lr_mult,
                                                         decay_mult);
  HCNN_CUDA_CHECK(cudaGetLastError());
}

// The element types of the templates above: float, and BF16 storage.
#define HCNN_KERNELS_FOR(T)                                                                                          \
  template void pool_forward<T>(const PoolGeometry&, const T*, T*, cudaStream_t);                                    \
  template void pool_backward<T>(const PoolGeometry&, const T*, const T*, T*, cudaStream_t);                         \
  template void dropout_forward<T>(const T*, T*, std::uint8_t*, std::size_t, std::uint64_t, Scalar<std::uint64_t>,   \
                                   std::uint32_t, float, cudaStream_t);                                              \
  template void dropout_backward<T>(const T*, const std::uint8_t*, T*, std::size_t, float, cudaStream_t);            \
  template void softmax_cross_entropy_gradient<T>(const T*, const int*, T*, int, int, cudaStream_t);
HCNN_KERNELS_FOR(float)
HCNN_KERNELS_FOR(bf16)
#undef HCNN_KERNELS_FOR

}  // namespace hcnn::cuda::kernels
