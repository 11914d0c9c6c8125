// hcnn/layers/conv.hpp — Conv<Out, Kernel, Stride, Pad, Groups, Act>: Caffe's Convolution layer.
//
// Cross-correlation (no kernel flip) with square kernels, output size floor((H + 2p - k)/s) + 1,
// weight blob (Out, C/Groups, k, k) and bias (Out). Group g maps input channels
// [g*C/G, (g+1)*C/G) to output channels [g*Out/G, (g+1)*Out/G). The activation is fused.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "../core/layer.hpp"
#include "activation.hpp"

namespace hcnn {

template <int Out, int Kernel, int Stride = 1, int Pad = 0, int Groups = 1, Activation Act = ReLU>
struct Conv {
  static_assert(Out > 0, "Conv: the number of output channels must be positive");
  static_assert(Kernel > 0, "Conv: the kernel size must be positive");
  static_assert(Stride > 0, "Conv: the stride must be positive");
  static_assert(Pad >= 0, "Conv: the padding must not be negative");
  static_assert(Groups > 0, "Conv: the number of groups must be positive");
  static_assert(Out % Groups == 0, "Conv: Groups must divide the number of output channels");

  static constexpr std::string_view kind = "Conv";
  static constexpr std::string_view name_prefix = "conv";
  static constexpr bool weight_layer = true;
  static constexpr int out_channels = Out, kernel = Kernel, stride = Stride, pad = Pad, groups = Groups;
  using activation = Act;

  template <Shape In>
  static consteval Shape output() {
    static_assert(In.c % Groups == 0, "Conv: Groups must divide the number of input channels");
    static_assert(Kernel <= In.h + 2 * Pad && Kernel <= In.w + 2 * Pad,
                  "Conv: the kernel is larger than its (padded) input map");
    return {Out, (In.h + 2 * Pad - Kernel) / Stride + 1, (In.w + 2 * Pad - Kernel) / Stride + 1};
  }
  template <Shape In>
  static constexpr std::int64_t param_count() {
    return std::int64_t{Out} * (In.c / Groups) * Kernel * Kernel + Out;
  }
  template <Shape In>
  static constexpr std::int64_t macs() {
    constexpr Shape o = output<In>();
    return std::int64_t{Out} * o.h * o.w * (In.c / Groups) * Kernel * Kernel;
  }
  template <Shape In>
  static constexpr std::array<BlobSpec, 2> blobs() {
    constexpr int fan_in = (In.c / Groups) * Kernel * Kernel;
    return {BlobSpec{"weight", {Out, In.c / Groups, Kernel, Kernel}, 4, 1.0f, 1.0f, true, fan_in},
            BlobSpec{"bias", {Out, 1, 1, 1}, 1, 2.0f, 0.0f}};
  }
  static std::string describe() {
    return window_text(Kernel, Stride, false, Pad) + (Groups != 1 ? " group " + std::to_string(Groups) : "") +
           activation_text(Act::name);
  }
};

}  // namespace hcnn
