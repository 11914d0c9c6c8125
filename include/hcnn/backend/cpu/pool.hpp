// hcnn/backend/cpu/pool.hpp — max and average pooling on the CPU, with Caffe's windows.
//
// Max pooling recomputes each window's argmax in the backward pass instead of storing it: the
// result is the same (the first maximum wins, as in Caffe) and nothing is allocated per batch.
// The layer binds its shapes and window to a PoolGeometry and calls kernels compiled once per
// element type, as Conv does.
#pragma once

#include <algorithm>
#include <limits>

#include "../../core/layer.hpp"
#include "../../layers/pool.hpp"

namespace hcnn {

namespace cpu {

// A pooling layer's shapes and window as runtime values.
struct PoolGeometry {
  bool is_max;
  int kernel, stride, pad;
  int in_h, in_w, out_h, out_w;
  int channels;

  long in_plane() const { return long{in_h} * in_w; }
  long out_plane() const { return long{out_h} * out_w; }

  // Calls f(output index, clipped window [h0,h1) x [w0,w1), divisor) for each output cell.
  template <class F>
  void for_each_window(F&& f) const {
    for (int oh = 0; oh < out_h; ++oh) {
      for (int ow = 0; ow < out_w; ++ow) {
        int h0 = oh * stride - pad, w0 = ow * stride - pad;
        // Average pooling counts padded cells: its window is clipped at H + P, not H.
        int h1 = std::min(h0 + kernel, is_max ? in_h : in_h + pad);
        int w1 = std::min(w0 + kernel, is_max ? in_w : in_w + pad);
        const int divisor = (h1 - h0) * (w1 - w0);
        h0 = std::max(h0, 0);
        w0 = std::max(w0, 0);
        h1 = std::min(h1, in_h);
        w1 = std::min(w1, in_w);
        f(oh * out_w + ow, h0, h1, w0, w1, divisor);
      }
    }
  }

  // The index of the first maximum of a clipped window of the plane x.
  template <class T>
  int argmax(const T* x, int h0, int h1, int w0, int w1) const {
    int best = h0 * in_w + w0;
    for (int h = h0; h < h1; ++h)
      for (int w = w0; w < w1; ++w)
        if (x[h * in_w + w] > x[best]) best = h * in_w + w;
    return best;
  }
};

template <class T>
void pool_forward(const PoolGeometry& g, const T* in, T* out, int n) {
  const long planes = long{n} * g.channels;
#pragma omp parallel for schedule(static) if (planes * g.out_plane() > 16384)
  for (long plane = 0; plane < planes; ++plane) {
    const T* x = in + plane * g.in_plane();
    T* y = out + plane * g.out_plane();
    if (g.is_max) {
      g.for_each_window([&](int o, int h0, int h1, int w0, int w1, int) { y[o] = x[g.argmax(x, h0, h1, w0, w1)]; });
    } else {
      g.for_each_window([&](int o, int h0, int h1, int w0, int w1, int divisor) {
        T sum{0};
        for (int h = h0; h < h1; ++h)
          for (int w = w0; w < w1; ++w) sum += x[h * g.in_w + w];
        y[o] = sum / static_cast<T>(divisor);
      });
    }
  }
}

template <class T>
void pool_backward(const PoolGeometry& g, const T* in, const T* dout, T* din, int n) {
  const long planes = long{n} * g.channels;
#pragma omp parallel for schedule(static) if (planes * g.in_plane() > 16384)
  for (long plane = 0; plane < planes; ++plane) {
    const T* x = in + plane * g.in_plane();
    const T* dy = dout + plane * g.out_plane();
    T* dx = din + plane * g.in_plane();
    std::fill(dx, dx + g.in_plane(), T{0});
    if (g.is_max) {
      g.for_each_window([&](int o, int h0, int h1, int w0, int w1, int) { dx[g.argmax(x, h0, h1, w0, w1)] += dy[o]; });
    } else {
      g.for_each_window([&](int o, int h0, int h1, int w0, int w1, int divisor) {
        const T share = dy[o] / static_cast<T>(divisor);
        for (int h = h0; h < h1; ++h)
          for (int w = w0; w < w1; ++w) dx[h * g.in_w + w] += share;
      });
    }
  }
}

}  // namespace cpu

template <bool IsMax, int K, int S, int P, Shape In, class T>
struct LayerImpl<Pool<IsMax, K, S, P>, In, T, Cpu> : NoParams<T, Cpu> {
  using spec = Pool<IsMax, K, S, P>;
  static constexpr Shape out_shape = spec::template output<In>();

  std::size_t workspace_bytes(int, Pass) const { return 0; }

  void forward(const T* in, T* out, int n, Mode, T*) const { cpu::pool_forward(geometry, in, out, n); }

  void backward(const T* in, const T*, T* dout, T* din, int n, T*) {
    if (din != nullptr) cpu::pool_backward(geometry, in, dout, din, n);
  }

 private:
  static constexpr cpu::PoolGeometry geometry{IsMax, K, S, P, In.h, In.w, out_shape.h, out_shape.w, In.c};
};

}  // namespace hcnn
