// hcnn/backend/cuda/buffer.hpp — Buffer<T, Cuda>: device memory with Buffer<T, Cpu>'s interface,
// plus the explicit host transfers that read_on_host and write_on_host (core/buffer.hpp) use.
// Copies run on the thread's stream (context.hpp), in order with the layers' work; a transfer
// to or from the host returns when it is done.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "../../core/backend.hpp"
#include "../../core/buffer.hpp"
#include "check.hpp"
#include "context.hpp"

namespace hcnn {

template <class T>
class Buffer<T, Cuda> {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t n) { assign(n, T{}); }
  Buffer(const Buffer& other) { *this = other; }
  Buffer(Buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  Buffer& operator=(const Buffer& other) {
    if (this == &other) return *this;
    reallocate(other.size_);
    if (size_ > 0)
      HCNN_CUDA_CHECK(
          cudaMemcpyAsync(data_, other.data_, size_ * sizeof(T), cudaMemcpyDeviceToDevice, cuda::context().stream()));
    return *this;
  }
  Buffer& operator=(Buffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }
  ~Buffer() { cudaFree(data_); }  // no throw from a destructor; cudaFree(nullptr) is a no-op

  // Makes room for at least n elements; contents are unspecified after growth.
  void ensure(std::size_t n) {
    if (size_ < n) reallocate(n);
  }
  void assign(std::size_t n, T value) {
    reallocate(n);
    fill(value);
  }
  void fill(T value) {
    if (size_ == 0) return;
    if (value == T{}) {  // zeros (an Average's sum, every step): no host copy, so a graph can capture it
      HCNN_CUDA_CHECK(cudaMemsetAsync(data_, 0, size_ * sizeof(T), cuda::context().stream()));
      return;
    }
    const std::vector<T> host(size_, value);
    copy_from_host(host.data(), size_);
  }

  // The explicit host <-> device seam: n elements from or to host memory.
  void copy_from_host(const T* host, std::size_t n) {
    ensure(n);
    if (n == 0) return;
    HCNN_CUDA_CHECK(cudaMemcpyAsync(data_, host, n * sizeof(T), cudaMemcpyHostToDevice, cuda::context().stream()));
    // The host memory may go away when this returns. While a graph is being captured the copy
    // is only recorded: its source is pinned memory that each launch reads (graph.hpp).
    if (!cuda::context().capturing()) cuda::context().synchronize();
  }
  void copy_to_host(T* host, std::size_t n) const {
    if (n > size_) throw Error("Buffer<Cuda>::copy_to_host: " + std::to_string(n) + " elements asked of " + std::to_string(size_));
    if (n == 0) return;
    HCNN_CUDA_CHECK(cudaMemcpyAsync(host, data_, n * sizeof(T), cudaMemcpyDeviceToHost, cuda::context().stream()));
    cuda::context().synchronize();
  }

  [[nodiscard]] T* data() { return data_; }
  [[nodiscard]] const T* data() const { return data_; }
  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  void reallocate(std::size_t n) {
    if (n == size_) return;
    (void)cuda::context();  // without a GPU: "the Cuda backend needs an NVIDIA GPU", not cudaMalloc's code
    T* fresh = nullptr;
    if (n > 0) HCNN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&fresh), n * sizeof(T)));
    cudaFree(data_);
    data_ = fresh;
    size_ = n;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
};

// The device side of core/buffer.hpp's copy_values, copy_rows and add_part_of_mean.
template <class T>
void copy_values(Cuda, const T* from, std::size_t n, T* to) {
  if (n > 0)
    HCNN_CUDA_CHECK(cudaMemcpyAsync(to, from, n * sizeof(T), cudaMemcpyDeviceToDevice, cuda::context().stream()));
}

// Copies n values from device memory at `from` (part of a buffer: a layer's activations) to
// the host; returns when they are there.
template <class T>
void copy_to_host(Cuda, const T* from, std::size_t n, T* host) {
  if (n == 0) return;
  HCNN_CUDA_CHECK(cudaMemcpyAsync(host, from, n * sizeof(T), cudaMemcpyDeviceToHost, cuda::context().stream()));
  cuda::context().synchronize();
}

template <class T>
void copy_rows(Cuda, const T* from, std::size_t from_pitch, T* to, std::size_t to_pitch, std::size_t width,
               std::size_t rows) {
  if (width == 0 || rows == 0) return;
  HCNN_CUDA_CHECK(cudaMemcpy2DAsync(to, to_pitch * sizeof(T), from, from_pitch * sizeof(T), width * sizeof(T), rows,
                                    cudaMemcpyDeviceToDevice, cuda::context().stream()));
}

inline void add_part_of_mean(Cuda, const float* x, int parts, float* y, std::size_t n) {
  const float fraction = 1.0f / float(parts);
  HCNN_CUBLAS_CHECK(cublasSaxpy(cuda::context().cublas(), static_cast<int>(n), &fraction, x, 1, y, 1));
}

}  // namespace hcnn
