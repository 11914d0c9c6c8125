// hcnn/backend/cuda/activation.hpp — the fused activations and biases of Conv, FC and
// BatchNorm on the GPU: cuDNN's calls for float, hcnn's kernels for bf16 (element.hpp).
#pragma once

#include <concepts>
#include <cstddef>

#include "../../layers/activation.hpp"
#include "context.hpp"
#include "cudnn.hpp"
#include "element.hpp"
#include "kernels.hpp"

namespace hcnn::cuda {

template <class Act, CudaElement T>
void activate(T* y, std::size_t count) {
  if constexpr (std::same_as<Act, ReLU>) {
    if constexpr (std::same_as<T, float>) dnn::relu_forward(y, count);
    else kernels::relu_forward(y, count, context().stream());
  }
}

// Turns dL/dy into dL/d(pre-activation), in place, from the activation's output y.
template <class Act, CudaElement T>
void activate_backward(const T* y, T* dy, std::size_t count) {
  if constexpr (std::same_as<Act, ReLU>) {
    if constexpr (std::same_as<T, float>) dnn::relu_backward(y, dy, count);
    else kernels::relu_backward(y, dy, count, context().stream());
  }
}

// y += bias per channel, over n samples of c channels of `plane` values.
template <CudaElement T>
void add_bias(const T* bias, T* y, int n, int c, int plane) {
  if constexpr (std::same_as<T, float>) dnn::add_bias(bias, y, n, c, plane);
  else kernels::add_bias(bias, y, n, c, plane, context().stream());
}

// dbias = the sum of dy over samples and positions, overwritten.
template <CudaElement T>
void bias_gradient(const T* dy, T* dbias, int n, int c, int plane) {
  if constexpr (std::same_as<T, float>) dnn::bias_gradient(dy, dbias, n, c, plane, 1);
  else kernels::bias_gradient(dy, dbias, n, c, plane, context().stream());
}

}  // namespace hcnn::cuda
