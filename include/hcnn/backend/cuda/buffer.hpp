// hcnn/backend/cuda/buffer.hpp — Buffer<T, Cuda>: device memory with Buffer<T, Cpu>'s interface,
// plus the explicit host transfers that everything reading or writing parameters goes through.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "../../core/backend.hpp"
#include "../../core/buffer.hpp"
#include "check.hpp"

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
    if (size_ > 0) HCNN_CUDA_CHECK(cudaMemcpy(data_, other.data_, size_ * sizeof(T), cudaMemcpyDeviceToDevice));
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
    const std::vector<T> host(size_, value);
    copy_from_host(host.data(), size_);
  }

  // The explicit host <-> device seam: n elements from or to host memory.
  void copy_from_host(const T* host, std::size_t n) {
    ensure(n);
    if (n > 0) HCNN_CUDA_CHECK(cudaMemcpy(data_, host, n * sizeof(T), cudaMemcpyHostToDevice));
  }
  void copy_to_host(T* host, std::size_t n) const {
    if (n > size_) throw Error("Buffer<Cuda>::copy_to_host: " + std::to_string(n) + " elements asked of " + std::to_string(size_));
    if (n > 0) HCNN_CUDA_CHECK(cudaMemcpy(host, data_, n * sizeof(T), cudaMemcpyDeviceToHost));
  }

  [[nodiscard]] T* data() { return data_; }
  [[nodiscard]] const T* data() const { return data_; }
  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  void reallocate(std::size_t n) {
    if (n == size_) return;
    T* fresh = nullptr;
    if (n > 0) HCNN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&fresh), n * sizeof(T)));
    cudaFree(data_);
    data_ = fresh;
    size_ = n;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace hcnn
