// hcnn/backend/cpu/lrn.hpp — Caffe's across-channel LRN on the CPU.
//
// scale_c = K + Alpha/Size * sum of x^2 over the Size channels centred on c (zero past the
// edges); y_c = x_c * scale_c^-Beta. The backward pass is Caffe's:
// dx_c = dy_c * scale_c^-Beta - (2 Alpha Beta / Size) * x_c * sum_{c' near c} dy_c' y_c' / scale_c'.
// The scale is recomputed in the backward pass (in the workspace) rather than kept per batch.
// The samples run on parallel lanes (parallel.hpp), each with its own slice of the workspace.
// The layer binds its shape and constants to an LrnGeometry and calls kernels compiled once per
// element type, as Conv does.
#pragma once

#include <algorithm>
#include <cmath>

#include "../../core/layer.hpp"
#include "../../layers/lrn.hpp"
#include "eigen.hpp"
#include "parallel.hpp"

namespace hcnn {

namespace cpu {

// An LRN layer's shape and constants as runtime values.
struct LrnGeometry {
  int size;
  float alpha, beta, k;
  int channels, plane;

  long sample() const { return long{channels} * plane; }
  int half() const { return (size - 1) / 2; }  // channels on each side of the window's centre
  // Per lane: one sample's scale, and its dy*y/scale (backward) or squares (forward).
  std::size_t lane_values() const { return 2 * std::size_t(sample()); }

  template <class T>
  ArrayMap<T> plane_of(T* p, int c) const {
    return ArrayMap<T>(p + long{c} * plane, plane);
  }
  template <class T>
  ConstArrayMap<T> plane_of(const T* p, int c) const {
    return ConstArrayMap<T>(p + long{c} * plane, plane);
  }

  // scale = K + Alpha/Size * windowed sum of squares; `squares` is scratch of sample().
  template <class T>
  void compute_scale(const T* x, T* scale, T* squares) const {
    ArrayMap<T>(squares, sample()) = ConstArrayMap<T>(x, sample()).square();
    for (int c = 0; c < channels; ++c) {
      auto s = plane_of(scale, c);
      s.setZero();
      for (int c2 = std::max(0, c - half()); c2 <= std::min(channels - 1, c + half()); ++c2) s += plane_of(squares, c2);
      s = T(k) + (T(alpha) / T(size)) * s;
    }
  }

  // y = x * scale^-Beta. For Caffe's Beta of 0.75 as x / sqrt(scale * sqrt(scale)): correctly
  // rounded square roots instead of a vectorised pow, which took 3 % of SmallD's training step.
  template <class T>
  void scale_by_power_of_minus_beta(const T* x, const T* scale, T* y) const {
    const auto s = ConstArrayMap<T>(scale, sample());
    if (beta == 0.75f)
      ArrayMap<T>(y, sample()) = ConstArrayMap<T>(x, sample()) * (s * s.sqrt()).sqrt().inverse();
    else
      ArrayMap<T>(y, sample()) = ConstArrayMap<T>(x, sample()) * s.pow(-T(beta));
  }
};

template <class T>
void lrn_forward(const LrnGeometry& g, const T* in, T* out, int n, T* ws) {
  for_each_sample(n, lanes(n), [&](int s, int lane) {
    T* scale = ws + lane * g.lane_values();
    g.compute_scale(in + s * g.sample(), scale, scale + g.sample());
    g.scale_by_power_of_minus_beta(in + s * g.sample(), scale, out + s * g.sample());
  });
}

template <class T>
void lrn_backward(const LrnGeometry& g, const T* in, const T* out, const T* dout, T* din, int n, T* ws) {
  const T factor = T(2) * T(g.alpha) * T(g.beta) / T(g.size);
  const long values = g.sample();
  for_each_sample(n, lanes(n), [&](int s, int lane) {
    const T* x = in + s * values;
    const T* y = out + s * values;
    const T* dy = dout + s * values;
    T* dx = din + s * values;
    T* scale = ws + lane * g.lane_values();
    T* ratio = scale + values;  // dy * y / scale
    g.compute_scale(x, scale, ratio);
    ArrayMap<T>(ratio, values) =
        ConstArrayMap<T>(dy, values) * ConstArrayMap<T>(y, values) / ConstArrayMap<T>(scale, values);
    const T* ratios = ratio;
    g.scale_by_power_of_minus_beta(dy, scale, dx);
    for (int c = 0; c < g.channels; ++c) {
      auto dx_c = g.plane_of(dx, c);
      const auto x_c = g.plane_of(x, c);
      for (int c2 = std::max(0, c - g.half()); c2 <= std::min(g.channels - 1, c + g.half()); ++c2)
        dx_c -= factor * x_c * g.plane_of(ratios, c2);
    }
  });
}

}  // namespace cpu

template <int Size, float Alpha, float Beta, float K, Shape In, class T>
struct LayerImpl<LRN<Size, Alpha, Beta, K>, In, T, Cpu> : NoParams<T, Cpu> {
  using spec = LRN<Size, Alpha, Beta, K>;
  static constexpr Shape out_shape = In;

  std::size_t workspace_bytes(int n, Pass) const { return std::size_t(cpu::lanes(n)) * geometry.lane_values() * sizeof(T); }

  void forward(const T* in, T* out, int n, Mode, T* ws) const { cpu::lrn_forward(geometry, in, out, n, ws); }

  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    if (din != nullptr) cpu::lrn_backward(geometry, in, out, dout, din, n, ws);
  }

 private:
  static constexpr cpu::LrnGeometry geometry{Size, Alpha, Beta, K, In.c, In.h * In.w};
};

}  // namespace hcnn
