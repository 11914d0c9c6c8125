// hcnn/layers/lrn.hpp — LRN<Size, Alpha, Beta, K>: Caffe's across-channel local response norm.
//
// y_c = x_c * (K + Alpha/Size * sum_{|c'-c| <= Size/2} x_c'^2)^-Beta, channels past the edges
// count as zero while the divisor stays Size (TensorFlow's lrn does not divide Alpha by Size).
// Defaults are Caffe's and CaffeNet's: Alpha 1e-4, Beta 0.75, K 1.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "../core/layer.hpp"

namespace hcnn {

template <int Size = 5, float Alpha = 1e-4f, float Beta = 0.75f, float K = 1.0f>
struct LRN : ShapePreservingSpec {
  static_assert(Size > 0 && Size % 2 == 1, "LRN: the window size must be odd and positive (as Caffe requires)");
  static_assert(K > 0.0f, "LRN: K must be positive");

  static constexpr std::string_view kind = "LRN";
  static constexpr std::string_view name_prefix = "norm";
  static constexpr int size = Size;
  static constexpr float alpha = Alpha, beta = Beta, k = K;

  // Caffe's defaults go unsaid, so CaffeNet's reads "size 5".
  static std::string describe() {
    std::string s = "size " + std::to_string(Size);
    if (Alpha != 1e-4f || Beta != 0.75f || K != 1.0f)
      s += " alpha " + short_float(Alpha) + " beta " + short_float(Beta) + " k " + short_float(K);
    return s;
  }
};

}  // namespace hcnn
