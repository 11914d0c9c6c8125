// hcnn/core/buffer.hpp — backend-owned storage for parameters, activations and workspaces.
//
// Buffer<T, Backend> is the one place that allocates. Layers and networks see raw pointers,
// so the same layer interface serves host memory (here) and device memory (backend/cuda/).
// `ensure` grows and never shrinks: after the first batch of a given size, nothing allocates.
//
// read_on_host / write_on_host are the one seam between a buffer and host code (fillers,
// checkpoints, Caffe import and export, finiteness checks): on the CPU they hand over the
// buffer itself, on a device they download the values, or upload what the host wrote.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <span>
#include <utility>
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

// What models do to activations in a backend's own memory, outside any layer: copies (Model's
// input and output gradient), strided row copies (a Combination's crops, concatenation and
// its split of the gradient) and an Average's sum. The Cuda overloads, on the thread's
// stream, are in backend/cuda/buffer.hpp.

// Copies n values.
template <class T>
void copy_values(Cpu, const T* from, std::size_t n, T* to) {
  std::copy(from, from + n, to);
}

// Copies `rows` rows of `width` values, which start `from_pitch` values apart in the source
// and `to_pitch` apart in the destination.
template <class T>
void copy_rows(Cpu, const T* from, std::size_t from_pitch, T* to, std::size_t to_pitch, std::size_t width,
               std::size_t rows) {
  for (std::size_t r = 0; r < rows; ++r) std::copy(from + r * from_pitch, from + r * from_pitch + width, to + r * to_pitch);
}

// y += x / parts over n values: one term of the mean of `parts` arrays.
template <class T>
void add_part_of_mean(Cpu, const T* x, int parts, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] += x[i] / T(parts);
}

// Calls f(std::span<const T>) with the buffer's values in host memory; returns what f returns.
template <class T, class Backend, class F>
decltype(auto) read_on_host(const Buffer<T, Backend>& buffer, F&& f) {
  if constexpr (std::same_as<Backend, Cpu>) {
    return std::forward<F>(f)(std::span<const T>(buffer.data(), buffer.size()));
  } else {
    std::vector<T> host(buffer.size());
    buffer.copy_to_host(host.data(), host.size());
    return std::forward<F>(f)(std::span<const T>(host));
  }
}

// Calls f(std::span<T>) to write every value of the buffer from the host. On a device f sees
// zeros, not the buffer's values: it must write them all.
template <class T, class Backend, class F>
void write_on_host(Buffer<T, Backend>& buffer, F&& f) {
  if constexpr (std::same_as<Backend, Cpu>) {
    std::forward<F>(f)(std::span<T>(buffer.data(), buffer.size()));
  } else {
    std::vector<T> host(buffer.size());
    std::forward<F>(f)(std::span<T>(host));
    buffer.copy_from_host(host.data(), host.size());
  }
}

}  // namespace hcnn
