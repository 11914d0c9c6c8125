// hcnn/core/tensor.hpp — a batch of samples in N,C,H,W order (row-major, as Caffe stores blobs).
//
// Tensors carry their shape at run time because they come from outside (datasets, files,
// user code); networks check them against their compile-time input shape on entry.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>

#include "buffer.hpp"
#include "error.hpp"
#include "shape.hpp"

namespace hcnn {

template <class T = float, class Backend = Cpu>
class Tensor {
 public:
  Tensor() = default;
  Tensor(int batch, Shape shape) { resize(batch, shape); }

  void resize(int batch, Shape shape) {
    if (batch < 0 || shape.c < 0 || shape.h < 0 || shape.w < 0)
      throw ShapeError("Tensor: negative dimension in " + std::to_string(batch) + "x" + to_string(shape));
    batch_ = batch;
    shape_ = shape;
    data_.ensure(size());
  }

  [[nodiscard]] int batch() const { return batch_; }
  [[nodiscard]] Shape shape() const { return shape_; }
  [[nodiscard]] std::size_t size() const { return static_cast<std::size_t>(batch_) * shape_.size(); }
  [[nodiscard]] T* data() { return data_.data(); }
  [[nodiscard]] const T* data() const { return data_.data(); }
  [[nodiscard]] T* sample(int n) { return data() + static_cast<std::size_t>(n) * shape_.size(); }
  [[nodiscard]] const T* sample(int n) const { return data() + static_cast<std::size_t>(n) * shape_.size(); }

  // The storage (at least size() values): for read_on_host and write_on_host.
  [[nodiscard]] Buffer<T, Backend>& buffer() { return data_; }
  [[nodiscard]] const Buffer<T, Backend>& buffer() const { return data_; }

  // Element access on the host only.
  T& operator()(int n, int c, int h, int w) requires std::same_as<Backend, Cpu> {
    return data()[index(n, c, h, w)];
  }
  const T& operator()(int n, int c, int h, int w) const requires std::same_as<Backend, Cpu> {
    return data()[index(n, c, h, w)];
  }
  T& operator[](std::size_t i) requires std::same_as<Backend, Cpu> { return data()[i]; }
  const T& operator[](std::size_t i) const requires std::same_as<Backend, Cpu> { return data()[i]; }

  void fill(T value) requires std::same_as<Backend, Cpu> {
    for (std::size_t i = 0; i < size(); ++i) data()[i] = value;
  }

 private:
  [[nodiscard]] std::size_t index(int n, int c, int h, int w) const {
    return ((static_cast<std::size_t>(n) * shape_.c + c) * shape_.h + h) * shape_.w + w;
  }

  int batch_ = 0;
  Shape shape_{};
  Buffer<T, Backend> data_;
};

}  // namespace hcnn
