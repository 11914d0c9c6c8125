// hcnn/backend/cuda/element.hpp — the element types of the Cuda backend: float, and bf16
// (BF16 storage with FP32 accumulation and FP32 master weights, docs/gpu.md "Precision").
//
//   Model<zoo::VGG19<>, Cuda, cuda::bf16> model(1);
//
// A bf16 model keeps its activations, gradients and weights in bfloat16 (half the memory and
// bandwidth of float; tensor-core convolutions and products). Convolutions and inner products
// accumulate in float (cuDNN's and cuBLAS's FP32 compute type); the other layers compute in
// float from bf16 loads; SgdSolver<cuda::bf16, Cuda> updates an FP32 master copy of each blob
// with FP32 momentum and stores its rounding as the weights.
#pragma once

#include <cuda_bf16.h>

#include <concepts>
#include <cstddef>

namespace hcnn::cuda {

using bf16 = __nv_bfloat16;

template <class T>
concept CudaElement = std::same_as<T, float> || std::same_as<T, bf16>;

// A bf16 layer that computes on float copies of its operands (softmax, LRN) takes them from
// its workspace: `slots` arrays of `count` floats after `skip` bytes, each start aligned as
// cudaMalloc aligns.
inline std::size_t aligned_bytes(std::size_t bytes) { return (bytes + 255) / 256 * 256; }
inline std::size_t float_slots_bytes(std::size_t skip, std::size_t count, int slots) {
  return aligned_bytes(skip) + std::size_t(slots) * aligned_bytes(count * sizeof(float));
}
inline float* float_slot(void* workspace, std::size_t skip, std::size_t count, int slot) {
  return reinterpret_cast<float*>(static_cast<char*>(workspace) + aligned_bytes(skip) +
                                  std::size_t(slot) * aligned_bytes(count * sizeof(float)));
}

}  // namespace hcnn::cuda
