// hcnn/core/shape.hpp — the compile-time shape of one sample (channels x height x width).
//
// Shapes are values of a structural type, so they can be template arguments: a layer bound
// into a network knows its input and output shapes as constants, and only the batch size is
// left to run time.
#pragma once

#include <cstdint>
#include <string>

namespace hcnn {

struct Shape {
  int c = 0;
  int h = 0;
  int w = 0;

  [[nodiscard]] constexpr std::int64_t size() const { return std::int64_t{c} * h * w; }
  friend constexpr bool operator==(Shape, Shape) = default;
};

[[nodiscard]] inline std::string to_string(Shape s) {
  return std::to_string(s.c) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w);
}

// Blob dimensions as Caffe prints them: "(4096, 9216)".
template <class Dims>
[[nodiscard]] std::string dims_to_string(const Dims& dims) {
  std::string s = "(";
  for (const auto& d : dims) s += (s.size() > 1 ? ", " : "") + std::to_string(d);
  return s + ")";
}

}  // namespace hcnn
