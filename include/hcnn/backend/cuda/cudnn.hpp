// hcnn/backend/cuda/cudnn.hpp — the one file that calls cuDNN (the shim).
//
// Every cuDNN call of the Cuda backend is here, behind RAII descriptors and small functions in
// the layers' terms, so a move from the legacy API to the graph API (cudnn_graph.h) touches
// this file only. The choice per op, as of cuDNN 9 (docs/gpu.md):
// - convolution forward, backward data, backward filter and the bias gradient: the legacy
//   calls (deprecated in 9.x, warnings only), algorithms found once per shape by timing
//   (cudnnFind*), deterministic ones first, within a workspace limit;
// - activation (ReLU, in place), softmax, LRN (cuDNN divides alpha by the window itself, as
//   Caffe does, so Caffe's alpha goes in unchanged) and batch normalisation (spatial mode);
// - not pooling: cuDNN rounds its output size down and cannot clip Caffe's average windows,
//   so pooling is hcnn's own kernel (kernels.hpp).
// Tensors are NCHW, float, or bf16 for convolutions (BF16 storage, element.hpp: FP32 compute
// type); the other ops run on float (a bf16 layer widens its operands first). Everything runs
// on the thread's stream (context.hpp).
#pragma once

#include <cudnn.h>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <string>

#include "check.hpp"
#include "context.hpp"
#include "element.hpp"

namespace hcnn::cuda::dnn {

template <CudaElement T>
constexpr cudnnDataType_t data_type() {
  return std::same_as<T, float> ? CUDNN_DATA_FLOAT : CUDNN_DATA_BFLOAT16;
}

// An n x c x h x w tensor (a vector of c values is 1 x c x 1 x 1).
class TensorDescriptor {
 public:
  TensorDescriptor(int n, int c, int h, int w, cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    HCNN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc_));
    HCNN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc_, CUDNN_TENSOR_NCHW, type, n, c, h, w));
  }
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;
  ~TensorDescriptor() { cudnnDestroyTensorDescriptor(desc_); }
  [[nodiscard]] cudnnTensorDescriptor_t get() const { return desc_; }

 private:
  cudnnTensorDescriptor_t desc_ = nullptr;
};

// Out x (in / groups) x k x k filters.
class FilterDescriptor {
 public:
  FilterDescriptor(int out, int in_per_group, int kh, int kw, cudnnDataType_t type) {
    HCNN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&desc_));
    HCNN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(desc_, type, CUDNN_TENSOR_NCHW, out, in_per_group, kh, kw));
  }
  FilterDescriptor(const FilterDescriptor&) = delete;
  FilterDescriptor& operator=(const FilterDescriptor&) = delete;
  ~FilterDescriptor() { cudnnDestroyFilterDescriptor(desc_); }
  [[nodiscard]] cudnnFilterDescriptor_t get() const { return desc_; }

 private:
  cudnnFilterDescriptor_t desc_ = nullptr;
};

// Caffe's convolution: cross-correlation, square padding and stride, no dilation, groups;
// computed in float whatever the tensors' type.
class ConvolutionDescriptor {
 public:
  ConvolutionDescriptor(int pad, int stride, int groups, cudnnMathType_t math) {
    HCNN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&desc_));
    HCNN_CUDNN_CHECK(
        cudnnSetConvolution2dDescriptor(desc_, pad, pad, stride, stride, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    HCNN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(desc_, groups));
    set_math(math);
  }
  ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;
  ~ConvolutionDescriptor() { cudnnDestroyConvolutionDescriptor(desc_); }
  [[nodiscard]] cudnnConvolutionDescriptor_t get() const { return desc_; }
  void set_math(cudnnMathType_t math) const { HCNN_CUDNN_CHECK(cudnnSetConvolutionMathType(desc_, math)); }

 private:
  cudnnConvolutionDescriptor_t desc_ = nullptr;
};

namespace detail {

// Of cuDNN's timed results (fastest first), the fastest deterministic one that ran and fits
// the workspace limit; else the fastest that ran and fits.
template <class Perf>
const Perf& choose(const Perf* results, int count, std::size_t limit, const char* what) {
  const Perf* fastest = nullptr;
  for (int i = 0; i < count; ++i) {
    const Perf& r = results[i];
    if (r.status != CUDNN_STATUS_SUCCESS || r.memory > limit) continue;
    if (r.determinism == CUDNN_DETERMINISTIC) return r;
    if (fastest == nullptr) fastest = &r;
  }
  if (fastest == nullptr)
    throw CudaError(std::string("cuDNN found no ") + what + " algorithm for this shape within the workspace limit of " +
                    std::to_string(limit >> 20) + " MiB");
  return *fastest;
}

}  // namespace detail

// One convolution layer at one batch size: its descriptors and the algorithms found for them.
// Immutable once made, so copies of a model can share it.
class ConvolutionPlan {
 public:
  // Workspace cuDNN may use per pass; larger algorithms are not considered.
  static constexpr std::size_t workspace_limit = std::size_t{1} << 30;

  // Tensors and filters of `type` (float or bf16). Float convolutions run on FMA kernels only
  // unless TF32 is on (tensor cores would round the products to TF32); bf16 ones on cuDNN's
  // choice, tensor cores included.
  ConvolutionPlan(int n, int in_c, int in_h, int in_w, int out_c, int out_h, int out_w, int kernel, int stride, int pad,
                  int groups, bool tf32, cudnnDataType_t type)
      : x_(n, in_c, in_h, in_w, type), y_(n, out_c, out_h, out_w, type), bias_(1, out_c, 1, 1),
        w_(out_c, in_c / groups, kernel, kernel, type), forward_conv_(pad, stride, groups, math(tf32, type)),
        data_conv_(pad, stride, groups, math(tf32, type)), filter_conv_(pad, stride, groups, math(tf32, type)) {
    const cudnnHandle_t handle = context().cudnn();
    constexpr int wanted = 8;
    int found = 0;
    cudnnConvolutionFwdAlgoPerf_t forward[wanted];
    HCNN_CUDNN_CHECK(
        cudnnFindConvolutionForwardAlgorithm(handle, x_.get(), w_.get(), forward_conv_.get(), y_.get(), wanted, &found, forward));
    const auto& f = detail::choose(forward, found, workspace_limit, "forward convolution");
    forward_algo_ = f.algo;
    forward_bytes_ = f.memory;
    forward_conv_.set_math(f.mathType);

    cudnnConvolutionBwdDataAlgoPerf_t data[wanted];
    HCNN_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(handle, w_.get(), y_.get(), data_conv_.get(), x_.get(),
                                                               wanted, &found, data));
    const auto& d = detail::choose(data, found, workspace_limit, "backward-data convolution");
    data_algo_ = d.algo;
    data_bytes_ = d.memory;
    data_conv_.set_math(d.mathType);

    cudnnConvolutionBwdFilterAlgoPerf_t filter[wanted];
    HCNN_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(handle, x_.get(), y_.get(), filter_conv_.get(),
                                                                 w_.get(), wanted, &found, filter));
    const auto& g = detail::choose(filter, found, workspace_limit, "backward-filter convolution");
    filter_algo_ = g.algo;
    filter_bytes_ = g.memory;
    filter_conv_.set_math(g.mathType);
  }

  [[nodiscard]] std::size_t forward_bytes() const { return forward_bytes_; }
  [[nodiscard]] std::size_t backward_bytes() const { return std::max(data_bytes_, filter_bytes_); }

  // y = conv(x, w), in the plan's type.
  void forward(const void* x, const void* w, void* y, void* ws) const {
    const float one = 1.0f, zero = 0.0f;
    HCNN_CUDNN_CHECK(cudnnConvolutionForward(context().cudnn(), &one, x_.get(), x, w_.get(), w, forward_conv_.get(),
                                             forward_algo_, ws, forward_bytes_, &zero, y_.get(), y));
  }
  // y += bias per channel (float tensors).
  void add_bias(const float* bias, float* y) const {
    const float one = 1.0f;
    HCNN_CUDNN_CHECK(cudnnAddTensor(context().cudnn(), &one, bias_.get(), bias, &one, y_.get(), y));
  }
  // The bias gradient of dy, overwritten (float tensors).
  void bias_gradient(const float* dy, float* dbias) const {
    const float one = 1.0f, zero = 0.0f;
    HCNN_CUDNN_CHECK(cudnnConvolutionBackwardBias(context().cudnn(), &one, y_.get(), dy, &zero, bias_.get(), dbias));
  }
  // The weight gradient of dy (overwritten), and dx when asked for.
  void backward(const void* x, const void* w, const void* dy, void* dw, void* dx, void* ws) const {
    const float one = 1.0f, zero = 0.0f;
    const cudnnHandle_t handle = context().cudnn();
    HCNN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle, &one, x_.get(), x, y_.get(), dy, filter_conv_.get(),
                                                    filter_algo_, ws, filter_bytes_, &zero, w_.get(), dw));
    if (dx != nullptr)
      HCNN_CUDNN_CHECK(cudnnConvolutionBackwardData(handle, &one, w_.get(), w, y_.get(), dy, data_conv_.get(), data_algo_,
                                                    ws, data_bytes_, &zero, x_.get(), dx));
  }

 private:
  static cudnnMathType_t math(bool tf32, cudnnDataType_t type) {
    return tf32 || type != CUDNN_DATA_FLOAT ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  }

  TensorDescriptor x_, y_, bias_;
  FilterDescriptor w_;
  ConvolutionDescriptor forward_conv_, data_conv_, filter_conv_;  // each with its algorithm's math type
  cudnnConvolutionFwdAlgo_t forward_algo_{};
  cudnnConvolutionBwdDataAlgo_t data_algo_{};
  cudnnConvolutionBwdFilterAlgo_t filter_algo_{};
  std::size_t forward_bytes_ = 0, data_bytes_ = 0, filter_bytes_ = 0;
};

// y += bias per channel over n samples of c channels of `plane` values (float).
inline void add_bias(const float* bias, float* y, int n, int c, int plane) {
  const float one = 1.0f;
  const TensorDescriptor b(1, c, 1, 1), out(n, c, plane, 1);
  HCNN_CUDNN_CHECK(cudnnAddTensor(context().cudnn(), &one, b.get(), bias, &one, out.get(), y));
}

// dbias = sum of dy over samples and positions.
inline void bias_gradient(const float* dy, float* dbias, int n, int c, int h, int w) {
  const float one = 1.0f, zero = 0.0f;
  const TensorDescriptor b(1, c, 1, 1), d(n, c, h, w);
  HCNN_CUDNN_CHECK(cudnnConvolutionBackwardBias(context().cudnn(), &one, d.get(), dy, &zero, b.get(), dbias));
}

class ReluDescriptor {
 public:
  ReluDescriptor() {
    HCNN_CUDNN_CHECK(cudnnCreateActivationDescriptor(&desc_));
    HCNN_CUDNN_CHECK(cudnnSetActivationDescriptor(desc_, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0));
  }
  ReluDescriptor(const ReluDescriptor&) = delete;
  ReluDescriptor& operator=(const ReluDescriptor&) = delete;
  ~ReluDescriptor() { cudnnDestroyActivationDescriptor(desc_); }
  [[nodiscard]] cudnnActivationDescriptor_t get() const { return desc_; }

 private:
  cudnnActivationDescriptor_t desc_ = nullptr;
};

// y = max(y, 0) over `count` values, in place.
inline void relu_forward(float* y, std::size_t count) {
  const float one = 1.0f, zero = 0.0f;
  const ReluDescriptor relu;
  const TensorDescriptor d(1, static_cast<int>(count), 1, 1);
  HCNN_CUDNN_CHECK(cudnnActivationForward(context().cudnn(), relu.get(), &one, d.get(), y, &zero, d.get(), y));
}

// dy *= (y > 0), in place: ReLU's output stands for its input, as in Caffe's in-place ReLU.
inline void relu_backward(const float* y, float* dy, std::size_t count) {
  const float one = 1.0f, zero = 0.0f;
  const ReluDescriptor relu;
  const TensorDescriptor d(1, static_cast<int>(count), 1, 1);
  HCNN_CUDNN_CHECK(
      cudnnActivationBackward(context().cudnn(), relu.get(), &one, d.get(), y, d.get(), dy, d.get(), y, &zero, d.get(), dy));
}

// Row-wise softmax of n rows of c values.
inline void softmax_forward(const float* x, float* y, int n, int c) {
  const float one = 1.0f, zero = 0.0f;
  const TensorDescriptor d(n, c, 1, 1);
  HCNN_CUDNN_CHECK(cudnnSoftmaxForward(context().cudnn(), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, &one,
                                       d.get(), x, &zero, d.get(), y));
}

// dx = y * (dy - <dy, y>) per row: the softmax Jacobian.
inline void softmax_backward(const float* y, const float* dy, float* dx, int n, int c) {
  const float one = 1.0f, zero = 0.0f;
  const TensorDescriptor d(n, c, 1, 1);
  HCNN_CUDNN_CHECK(cudnnSoftmaxBackward(context().cudnn(), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, &one,
                                        d.get(), y, d.get(), dy, &zero, d.get(), dx));
}

// Caffe's across-channel LRN: window `size`, alpha (divided by the window by cuDNN), beta, k.
class Lrn {
 public:
  Lrn(int n, int c, int h, int w, int size, double alpha, double beta, double k) : x_(n, c, h, w) {
    HCNN_CUDNN_CHECK(cudnnCreateLRNDescriptor(&desc_));
    HCNN_CUDNN_CHECK(cudnnSetLRNDescriptor(desc_, static_cast<unsigned>(size), alpha, beta, k));
  }
  Lrn(const Lrn&) = delete;
  Lrn& operator=(const Lrn&) = delete;
  ~Lrn() { cudnnDestroyLRNDescriptor(desc_); }

  void forward(const float* x, float* y) const {
    const float one = 1.0f, zero = 0.0f;
    HCNN_CUDNN_CHECK(cudnnLRNCrossChannelForward(context().cudnn(), desc_, CUDNN_LRN_CROSS_CHANNEL_DIM1, &one, x_.get(), x,
                                                 &zero, x_.get(), y));
  }
  void backward(const float* x, const float* y, const float* dy, float* dx) const {
    const float one = 1.0f, zero = 0.0f;
    HCNN_CUDNN_CHECK(cudnnLRNCrossChannelBackward(context().cudnn(), desc_, CUDNN_LRN_CROSS_CHANNEL_DIM1, &one, x_.get(),
                                                  y, x_.get(), dy, x_.get(), x, &zero, x_.get(), dx));
  }

 private:
  TensorDescriptor x_;
  cudnnLRNDescriptor_t desc_ = nullptr;
};

// Spatial batch normalisation of an n x c x h x w tensor (statistics over n, h, w).
class BatchNorm {
 public:
  BatchNorm(int n, int c, int h, int w, double eps) : x_(n, c, h, w), channels_(1, c, 1, 1), eps_(eps) {}

  // Normalises with the batch's statistics; writes the batch mean and unbiased variance
  // (cuDNN's running values with factor 1) and what the backward pass needs.
  void forward_training(const float* x, float* y, const float* scale, const float* bias, float* batch_mean,
                        float* batch_var, float* saved_mean, float* saved_inv_std) const {
    const float one = 1.0f, zero = 0.0f;
    HCNN_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(context().cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero,
                                                            x_.get(), x, x_.get(), y, channels_.get(), scale, bias, 1.0,
                                                            batch_mean, batch_var, eps_, saved_mean, saved_inv_std));
  }
  void forward_inference(const float* x, float* y, const float* scale, const float* bias, const float* mean,
                         const float* var) const {
    const float one = 1.0f, zero = 0.0f;
    HCNN_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(context().cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero,
                                                             x_.get(), x, x_.get(), y, channels_.get(), scale, bias, mean,
                                                             var, eps_));
  }
  // Backward through the batch statistics: dx, and the scale and bias gradients (overwritten).
  void backward(const float* x, const float* dy, float* dx, const float* scale, float* scale_grad, float* bias_grad,
                const float* saved_mean, const float* saved_inv_std) const {
    const float one = 1.0f, zero = 0.0f;
    HCNN_CUDNN_CHECK(cudnnBatchNormalizationBackward(context().cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero,
                                                     x_.get(), x, x_.get(), dy, x_.get(), dx, channels_.get(), scale,
                                                     scale_grad, bias_grad, eps_, saved_mean, saved_inv_std));
  }

 private:
  TensorDescriptor x_, channels_;
  double eps_;
};

}  // namespace hcnn::cuda::dnn
