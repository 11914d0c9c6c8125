// hcnn/backend/cuda/check.hpp — every CUDA runtime, cuBLAS and cuDNN call checked, in every
// build type.
//
//   HCNN_CUDA_CHECK(cudaMalloc(&p, bytes));
//   HCNN_CUBLAS_CHECK(cublasSgemm(...));
//   HCNN_CUDNN_CHECK(cudnnConvolutionForward(...));
//
// A failure throws CudaError naming the expression, file:line and the library's own error
// name and description ("cudaMalloc(&p, bytes) at buffer.hpp:40: cudaErrorMemoryAllocation,
// out of memory").
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "../../core/error.hpp"

namespace hcnn {

// A CUDA, cuBLAS or cuDNN call failed, or no GPU is there to run on.
class CudaError : public Error {
 public:
  using Error::Error;
};

namespace cuda::detail {

inline std::string where(const char* expression, const char* file, int line) {
  std::string name = file;
  if (const auto slash = name.rfind('/'); slash != std::string::npos) name = name.substr(slash + 1);
  return std::string(expression) + " at " + name + ":" + std::to_string(line) + ": ";
}

inline void check(cudaError_t status, const char* expression, const char* file, int line) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear the sticky-free error so that later calls do not report it again
  throw CudaError(where(expression, file, line) + cudaGetErrorName(status) + ", " + cudaGetErrorString(status));
}

inline void check(cublasStatus_t status, const char* expression, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw CudaError(where(expression, file, line) + cublasGetStatusName(status) + ", " + cublasGetStatusString(status));
}

inline void check(cudnnStatus_t status, const char* expression, const char* file, int line) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  throw CudaError(where(expression, file, line) + cudnnGetErrorString(status));
}

}  // namespace cuda::detail
}  // namespace hcnn

#define HCNN_CUDA_CHECK(expression) ::hcnn::cuda::detail::check((expression), #expression, __FILE__, __LINE__)
#define HCNN_CUBLAS_CHECK(expression) ::hcnn::cuda::detail::check((expression), #expression, __FILE__, __LINE__)
#define HCNN_CUDNN_CHECK(expression) ::hcnn::cuda::detail::check((expression), #expression, __FILE__, __LINE__)
