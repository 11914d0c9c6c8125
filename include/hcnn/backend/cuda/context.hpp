// hcnn/backend/cuda/context.hpp — the stream and library handles every Cuda layer works on.
//
// One Context per host thread (created on the thread's first Cuda call, for the current
// device): a stream, and a cuDNN and a cuBLAS handle bound to it. Layers and
// buffers hold no handle of their own, so copying a model copies no handle and nothing is
// freed twice; everything a thread's models do is ordered on its one stream, and the host
// waits only where it reads results (copy_to_host, a loss). The stream is a blocking one, so
// a plain cudaMemcpy in user code (on the legacy default stream) still waits for it.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>

#include "../../core/backend.hpp"
#include "check.hpp"
#include "device.hpp"

namespace hcnn::cuda {

class Context {
 public:
  Context() {
    require_device();
    HCNN_CUDA_CHECK(cudaStreamCreate(&stream_));
    HCNN_CUDNN_CHECK(cudnnCreate(&cudnn_));
    HCNN_CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
    HCNN_CUBLAS_CHECK(cublasCreate(&cublas_));
    HCNN_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    // cuBLAS's own workspace, given once (after cublasSetStream, which resets it): otherwise it
    // may allocate one inside a step being captured into a graph, where allocation is not
    // allowed. 32 MiB is cuBLAS's recommendation for Hopper.
    HCNN_CUDA_CHECK(cudaMalloc(&cublas_workspace_, cublas_workspace_bytes));
    HCNN_CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_workspace_, cublas_workspace_bytes));
    // FP32 by default: cuBLAS's default math keeps at least float's precision (no TF32 unless
    // asked for by set_tf32, or by NVIDIA_TF32_OVERRIDE in the environment).
    HCNN_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
  }
  // Lives as long as its thread's process (context() below), so it has no destructor.
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  [[nodiscard]] cudaStream_t stream() const { return stream_; }
  [[nodiscard]] cudnnHandle_t cudnn() const { return cudnn_; }
  [[nodiscard]] cublasHandle_t cublas() const { return cublas_; }

  // TF32 tensor-core math for cuBLAS and cuDNN's convolutions (about 10 bits of mantissa in
  // the products, FP32 accumulation): an option, off by default.
  void set_tf32(bool on) {
    tf32_ = on;
    HCNN_CUBLAS_CHECK(cublasSetMathMode(cublas_, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    note_change();
  }
  [[nodiscard]] bool tf32() const { return tf32_; }

  // Waits until everything queued on the stream has run.
  void synchronize() const { HCNN_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  // Whether the stream is recording a graph (graph.hpp) rather than running what it is given.
  [[nodiscard]] bool capturing() const {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    HCNN_CUDA_CHECK(cudaStreamIsCapturing(stream_, &status));
    return status != cudaStreamCaptureStatusNone;
  }

  // Counts what can make a captured training step stale (graph.hpp): passes through a model,
  // which set host-side state that a replay does not (the batch size, each layer's mode) and
  // are where its buffers grow; the math mode.
  [[nodiscard]] std::uint64_t changes() const { return changes_; }
  void note_change() { ++changes_; }

 private:
  cudaStream_t stream_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  static constexpr std::size_t cublas_workspace_bytes = std::size_t{32} << 20;
  void* cublas_workspace_ = nullptr;
  bool tf32_ = false;
  std::uint64_t changes_ = 0;
};

// This thread's context. Never destroyed: handles destroyed at exit, after the CUDA runtime
// may have shut down, can crash (PyTorch keeps its handles for the same reason); the end of the
// process frees them. Without a GPU the first call throws, and the next one tries again.
[[nodiscard]] inline Context& context() {
  thread_local Context* instance = new Context;
  return *instance;
}

}  // namespace hcnn::cuda

namespace hcnn {

// Model's scope around each pass on the GPU: counted, so that a captured training step knows
// when the model's host-side state may no longer be the one it was captured with.
template <>
struct PassScope<Cuda> {
  PassScope() { cuda::context().note_change(); }
};

}  // namespace hcnn
