// hcnn/layers/pool.hpp — MaxPool<K, S, P> and AvgPool<K, S, P> with Caffe's rounding.
//
// Caffe rounds the output size *up*: ceil((H + 2p - k)/s) + 1, and when p > 0 drops a last
// window that would start in the padding ((out-1)*s >= H + p). Max windows are clipped to the
// image; average windows divide by the window clipped at H + p, so padded cells count.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "../core/layer.hpp"

namespace hcnn {

// Caffe's pooled extent of one dimension.
constexpr int pooled_extent(int size, int kernel, int stride, int pad) {
  int out = (size + 2 * pad - kernel + stride - 1) / stride + 1;  // ceil division (numerator >= 0)
  if (pad > 0 && (out - 1) * stride >= size + pad) --out;
  return out;
}

template <bool IsMax, int K, int S, int P>
struct Pool : WeightlessSpec {
  static_assert(K > 0, "Pool: the window size must be positive");
  static_assert(S > 0, "Pool: the stride must be positive");
  static_assert(P >= 0 && P < K, "Pool: the padding must be in [0, window size)");

  static constexpr std::string_view kind = IsMax ? "MaxPool" : "AvgPool";
  static constexpr std::string_view name_prefix = "pool";
  static constexpr bool is_max = IsMax;
  static constexpr int kernel = K, stride = S, pad = P;

  template <Shape In>
  static consteval Shape output() {
    static_assert(K <= In.h + 2 * P && K <= In.w + 2 * P, "Pool: the window is larger than its (padded) input map");
    return {In.c, pooled_extent(In.h, K, S, P), pooled_extent(In.w, K, S, P)};
  }
  static std::string describe() { return window_text(K, S, true, P); }
};

template <int K, int S = K, int P = 0>
using MaxPool = Pool<true, K, S, P>;
template <int K, int S = K, int P = 0>
using AvgPool = Pool<false, K, S, P>;

}  // namespace hcnn
