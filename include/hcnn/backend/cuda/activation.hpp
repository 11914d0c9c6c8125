// hcnn/backend/cuda/activation.hpp — the fused activations of Conv, FC and BatchNorm on the GPU.
#pragma once

#include <concepts>
#include <cstddef>

#include "../../layers/activation.hpp"
#include "cudnn.hpp"

namespace hcnn::cuda {

// The Cuda backend computes in float for now (BF16 storage is issue 14's precision option).
template <class T>
concept CudaElement = std::same_as<T, float>;

template <class Act>
void activate(float* y, std::size_t count) {
  if constexpr (std::same_as<Act, ReLU>) dnn::relu_forward(y, count);
}

// Turns dL/dy into dL/d(pre-activation), in place, from the activation's output y.
template <class Act>
void activate_backward(const float* y, float* dy, std::size_t count) {
  if constexpr (std::same_as<Act, ReLU>) dnn::relu_backward(y, dy, count);
}

}  // namespace hcnn::cuda
