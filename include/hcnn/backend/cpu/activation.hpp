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
