// hcnn/backend/cuda/device.hpp — which GPUs there are.
#pragma once

#include <string>

#include "check.hpp"

namespace hcnn::cuda {

// How many CUDA devices this process can use: 0 without a GPU or without a driver (not an
// error: a CPU-only machine simply has none).
[[nodiscard]] inline int device_count() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status == cudaErrorNoDevice || status == cudaErrorInsufficientDriver) {
    cudaGetLastError();
    return 0;
  }
  HCNN_CUDA_CHECK(status);
  return count;
}

// The name of device `index` ("NVIDIA H200"), for benchmarks that must name their GPU.
[[nodiscard]] inline std::string device_name(int index = 0) {
  cudaDeviceProp properties{};
  HCNN_CUDA_CHECK(cudaGetDeviceProperties(&properties, index));
  return properties.name;
}

// Throws a CudaError saying so when there is no GPU: what a Cuda model checks first.
inline void require_device() {
  if (device_count() == 0) throw CudaError("hcnn: the Cuda backend needs an NVIDIA GPU, and this machine has none");
}

}  // namespace hcnn::cuda
