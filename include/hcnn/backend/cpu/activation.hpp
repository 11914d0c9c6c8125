// hcnn/backend/cpu/activation.hpp — the fused activations of Conv and FC on the CPU.
#pragma once

#include <cstddef>

#include "../../layers/activation.hpp"
#include "eigen.hpp"

namespace hcnn::cpu {

template <class Act, class T>
void activate(T* y, std::size_t count) {
  if constexpr (std::same_as<Act, ReLU>) {
    ArrayMap<T> a(y, static_cast<Eigen::Index>(count));
    a = a.max(T{0});
  }
}

// One value: what a fused epilogue (backend/cpu/winograd.hpp's store) applies as it writes.
// A NaN stays a NaN, so non-finite outputs are still caught downstream.
template <class Act, class T>
T activate_one(T v) {
  if constexpr (std::same_as<Act, ReLU>) return v < T{0} ? T{0} : v;
  return v;
}

// Turns dL/dy into dL/d(pre-activation), in place, from the activation's output y.
template <class Act, class T>
void activate_backward(const T* y, T* dy, std::size_t count) {
  if constexpr (std::same_as<Act, ReLU>) {
    const auto n = static_cast<Eigen::Index>(count);
    ArrayMap<T> g(dy, n);
    g = (ConstArrayMap<T>(y, n) > T{0}).select(g, T{0});
  }
}

}  // namespace hcnn::cpu
