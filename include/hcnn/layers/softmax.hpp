// hcnn/layers/softmax.hpp — Softmax<N>: the paper's "softmax layer", fc to N outputs + softmax.
//
// Caffe splits this into an InnerProduct (fc8) and a Softmax (prob); the paper counts it as one
// weight layer, which is why Combination<D, VD, FC<4096>, Softmax<N>> drops two layers of each
// base. The output is the N class probabilities; training uses the fused softmax +
// cross-entropy gradient (p - onehot) rather than the softmax Jacobian.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "../core/layer.hpp"

namespace hcnn {

template <int N>
struct Softmax : InnerProductSpec<N> {
  static_assert(N > 1, "Softmax: a classifier needs at least two classes");

  static constexpr std::string_view kind = "Softmax";
  static constexpr std::string_view name_prefix = "fc";
  static constexpr int classes = N;

  static std::string describe() { return " +softmax"; }
};

}  // namespace hcnn
