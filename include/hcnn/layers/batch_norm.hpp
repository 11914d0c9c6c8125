// hcnn/layers/batch_norm.hpp — BatchNorm<Act, Eps, MovingAverageFraction>: Caffe's BatchNorm
// followed by its Scale layer (with bias), as one layer.
//
// Training normalises each channel with its statistics over N, H, W (biased variance) and
// updates Caffe's moving sums: factor <- MAF * factor + 1, mean_sum <- MAF * mean_sum + mean,
// var_sum <- MAF * var_sum + m/(m-1) * var (m = N*H*W). Inference normalises with
// mean_sum/factor and var_sum/factor. Then y = Act(scale * x_hat + bias).
//
// Blobs, in Caffe's order: the BatchNorm layer's mean, variance and moving-average factor
// (state: not learnable, saved in checkpoints, read from .caffemodel), then the Scale layer's
// scale and bias (learnable; lr x1, no weight decay — a decayed scale would shrink toward a
// dead channel, which is also why PyTorch users exclude norm parameters from decay).
// BatchNorm is not a weight layer in the paper's sense: Combination's truncation rule does not
// count it, and a BatchNorm after a dropped weight layer is dropped with it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "../core/layer.hpp"
#include "activation.hpp"

namespace hcnn {

template <Activation Act = Identity, float Eps = 1e-5f, float MovingAverageFraction = 0.999f>
struct BatchNorm {
  static_assert(Eps > 0.0f, "BatchNorm: eps must be positive");
  static_assert(MovingAverageFraction >= 0.0f && MovingAverageFraction <= 1.0f,
                "BatchNorm: the moving average fraction must be in [0, 1]");

  static constexpr std::string_view kind = "BatchNorm";
  static constexpr std::string_view name_prefix = "bn";
  static constexpr bool weight_layer = false;
  static constexpr float eps = Eps, moving_average_fraction = MovingAverageFraction;
  using activation = Act;

  template <Shape In>
  static consteval Shape output() {
    return In;
  }
  // The learned scale and bias (the moving statistics are state, not parameters).
  template <Shape In>
  static constexpr std::int64_t param_count() {
    return 2 * std::int64_t{In.c};
  }
  template <Shape In>
  static constexpr std::int64_t macs() {
    return 0;
  }
  template <Shape In>
  static constexpr std::array<BlobSpec, 5> blobs() {
    return {BlobSpec{"mean", {In.c, 1, 1, 1}, 1, 0.0f, 0.0f, false},
            BlobSpec{"variance", {In.c, 1, 1, 1}, 1, 0.0f, 0.0f, false},
            BlobSpec{"moving_average_factor", {1, 1, 1, 1}, 1, 0.0f, 0.0f, false},
            BlobSpec{"scale", {In.c, 1, 1, 1}, 1, 1.0f, 0.0f},
            BlobSpec{"bias", {In.c, 1, 1, 1}, 1, 1.0f, 0.0f}};
  }
  static std::string describe() {
    std::string s = activation_text(Act::name);
    if (Eps != 1e-5f || MovingAverageFraction != 0.999f)
      s += " eps " + short_float(Eps) + " maf " + short_float(MovingAverageFraction);
    return s;
  }
};

}  // namespace hcnn
