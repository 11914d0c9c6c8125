// hcnn/layers/fc.hpp — FC<Out, Act>: Caffe's InnerProduct layer with a fused activation.
//
// y = W x + b with W of shape (Out, C*H*W): a map input is flattened in C,H,W order
// (c*H*W + h*W + w), exactly as Caffe flattens a blob. The output is an Out x 1 x 1 map.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "../core/layer.hpp"
#include "activation.hpp"

namespace hcnn {

template <int Out, Activation Act = ReLU>
struct FC : InnerProductSpec<Out> {
  static_assert(Out > 0, "FC: the number of outputs must be positive");

  static constexpr std::string_view kind = "FC";
  static constexpr std::string_view name_prefix = "fc";
  static constexpr int outputs = Out;
  using activation = Act;

  static std::string describe() { return activation_text(Act::name); }
};

}  // namespace hcnn
