// hcnn/core/buffer.hpp — backend-owned storage for parameters, activations and workspaces.
//
// Buffer<T, Backend> is the one place that allocates. Layers and networks see raw pointers,
// so the same layer interface serves host memory (here) and device memory (backend/cuda/).
// `ensure` grows and never shrinks: after the first batch of a given size, nothing allocates.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <vector>

#include "backend.hpp"

namespace hcnn {

template <class T, class Backend>
class Buffer;

template <class T>
class Buffer<T, Cpu> {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t n) : data_(n, T{}) {}

  // Makes room for at least n elements; contents are unspecified after growth.
  void ensure(std::size_t n) {
    if (data_.size() < n) data_.resize(n);
  }
  void assign(std::size_t n, T value) { data_.assign(n, value); }
  void fill(T value) { std::fill(data_.begin(), data_.end(), value); }

  [[nodiscard]] T* data() { return data_.data(); }
  [[nodiscard]] const T* data() const { return data_.data(); }
  [[nodiscard]] std::size_t size() const { return data_.size(); }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  auto begin() { return data_.begin(); }
  auto end() { return data_.end(); }
  auto begin() const { return data_.begin(); }
  auto end() const { return data_.end(); }

 private:
  // Eigen's allocator aligns to its packet size, which its GEMM kernels prefer.
  std::vector<T, Eigen::aligned_allocator<T>> data_;
};

}  // namespace hcnn
