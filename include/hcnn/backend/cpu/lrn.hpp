// hcnn/backend/cpu/lrn.hpp — Caffe's across-channel LRN on the CPU.
//
// scale_c = K + Alpha/Size * sum of x^2 over the Size channels centred on c (zero past the
// edges); y_c = x_c * scale_c^-Beta. The backward pass is Caffe's:
// dx_c = dy_c * scale_c^-Beta - (2 Alpha Beta / Size) * x_c * sum_{c' near c} dy_c' y_c' / scale_c'.
// The scale is recomputed in the backward pass (in the workspace) rather than kept per batch.
// The samples run on parallel lanes (parallel.hpp), each with its own slice of the workspace.
#pragma once

#include <cmath>

#include "../../core/layer.hpp"
#include "../../layers/lrn.hpp"
#include "eigen.hpp"
#include "parallel.hpp"

namespace hcnn {

template <int Size, float Alpha, float Beta, float K, Shape In, class T>
struct LayerImpl<LRN<Size, Alpha, Beta, K>, In, T, Cpu> : NoParams<T, Cpu> {
  using spec = LRN<Size, Alpha, Beta, K>;
  static constexpr Shape out_shape = In;
  static constexpr int half = (Size - 1) / 2;
  static constexpr int plane = In.h * In.w;

  // Per lane: one sample's scale, and its dy*y/scale (backward) or squares (forward).
  std::size_t workspace_bytes(int n, Pass) const { return std::size_t(cpu::lanes(n)) * lane_values * sizeof(T); }

  void forward(const T* in, T* out, int n, Mode, T* ws) const {
    cpu::for_each_sample(n, cpu::lanes(n), [&](int s, int lane) {
      const T* x = in + s * In.size();
      T* scale = ws + lane * lane_values;
      compute_scale(x, scale, scale + In.size());
      cpu::ArrayMap<T>(out + s * In.size(), In.size()) =
          cpu::ConstArrayMap<T>(x, In.size()) * power_of_minus_beta(cpu::ConstArrayMap<T>(scale, In.size()));
    });
  }

  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    if (din == nullptr) return;
    const T factor = T(2) * T(Alpha) * T(Beta) / T(Size);
    cpu::for_each_sample(n, cpu::lanes(n), [&](int s, int lane) {
      const T* x = in + s * In.size();
      const T* y = out + s * In.size();
      const T* dy = dout + s * In.size();
      T* dx = din + s * In.size();
      T* scale = ws + lane * lane_values;
      T* ratio = scale + In.size();
      compute_scale(x, scale, ratio);
      cpu::ArrayMap<T>(ratio, In.size()) = cpu::ConstArrayMap<T>(dy, In.size()) * cpu::ConstArrayMap<T>(y, In.size()) /
                                           cpu::ConstArrayMap<T>(scale, In.size());
      cpu::ArrayMap<T>(dx, In.size()) =
          cpu::ConstArrayMap<T>(dy, In.size()) * power_of_minus_beta(cpu::ConstArrayMap<T>(scale, In.size()));
      for (int c = 0; c < In.c; ++c) {
        auto dx_c = plane_of(dx, c);
        const auto x_c = cplane_of(x, c);
        for (int c2 = std::max(0, c - half); c2 <= std::min(In.c - 1, c + half); ++c2)
          dx_c -= factor * x_c * cplane_of(ratio, c2);
      }
    });
  }

 private:
  static constexpr std::size_t lane_values = 2 * std::size_t(In.size());

  // scale^-Beta. For Caffe's Beta of 0.75 as 1 / sqrt(scale * sqrt(scale)): correctly rounded
  // square roots instead of a vectorised pow, which took 3 % of SmallD's training step.
  template <class Scale>
  static auto power_of_minus_beta(const Scale& scale) {
    if constexpr (Beta == 0.75f)
      return (scale * scale.sqrt()).sqrt().inverse();
    else
      return scale.pow(-T(Beta));
  }

  static auto plane_of(T* p, int c) { return cpu::ArrayMap<T>(p + c * plane, plane); }
  static auto cplane_of(const T* p, int c) { return cpu::ConstArrayMap<T>(p + c * plane, plane); }

  // scale = K + Alpha/Size * windowed sum of squares; `squares` is scratch of In.size().
  static void compute_scale(const T* x, T* scale, T* squares) {
    cpu::ArrayMap<T>(squares, In.size()) = cpu::ConstArrayMap<T>(x, In.size()).square();
    for (int c = 0; c < In.c; ++c) {
      auto s = plane_of(scale, c);
      s.setZero();
      for (int c2 = std::max(0, c - half); c2 <= std::min(In.c - 1, c + half); ++c2) s += cplane_of(squares, c2);
      s = T(K) + (T(Alpha) / T(Size)) * s;
    }
  }
};

}  // namespace hcnn
