// hcnn/layers/input.hpp — the input shape that opens every Net.
#pragma once

#include "../core/shape.hpp"

namespace hcnn {

template <int C, int H, int W>
struct Input {
  static_assert(C > 0 && H > 0 && W > 0, "Input<C, H, W>: every dimension must be positive");
  static constexpr Shape shape{C, H, W};
};

}  // namespace hcnn
