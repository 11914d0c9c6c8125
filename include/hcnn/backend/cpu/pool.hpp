// hcnn/backend/cpu/pool.hpp — max and average pooling on the CPU, with Caffe's windows.
//
// Max pooling recomputes each window's argmax in the backward pass instead of storing it: the
// result is the same (the first maximum wins, as in Caffe) and nothing is allocated per batch.
#pragma once

#include <algorithm>
#include <limits>

#include "../../core/layer.hpp"
#include "../../layers/pool.hpp"

namespace hcnn {

template <bool IsMax, int K, int S, int P, Shape In, class T>
struct LayerImpl<Pool<IsMax, K, S, P>, In, T, Cpu> : NoParams<T, Cpu> {
  using spec = Pool<IsMax, K, S, P>;
  static constexpr Shape out_shape = spec::template output<In>();

  std::size_t workspace_bytes(int, Pass) const { return 0; }

  void forward(const T* in, T* out, int n, Mode, T*) const {
    const long planes = long{n} * In.c;
#pragma omp parallel for schedule(static) if (planes * out_shape.h * out_shape.w > 16384)
    for (long plane = 0; plane < planes; ++plane) {
      const T* x = in + plane * In.h * In.w;
      T* y = out + plane * out_shape.h * out_shape.w;
      for_each_window([&](int o, int h0, int h1, int w0, int w1, int divisor) {
        if constexpr (IsMax) {
          y[o] = x[argmax(x, h0, h1, w0, w1)];
        } else {
          T sum{0};
          for (int h = h0; h < h1; ++h)
            for (int w = w0; w < w1; ++w) sum += x[h * In.w + w];
          y[o] = sum / static_cast<T>(divisor);
        }
      });
    }
  }

  void backward(const T* in, const T*, T* dout, T* din, int n, T*) {
    if (din == nullptr) return;
    const long planes = long{n} * In.c;
#pragma omp parallel for schedule(static) if (planes * In.h * In.w > 16384)
    for (long plane = 0; plane < planes; ++plane) {
      const T* x = in + plane * In.h * In.w;
      const T* dy = dout + plane * out_shape.h * out_shape.w;
      T* dx = din + plane * In.h * In.w;
      std::fill(dx, dx + In.h * In.w, T{0});
      for_each_window([&](int o, int h0, int h1, int w0, int w1, int divisor) {
        if constexpr (IsMax) {
          dx[argmax(x, h0, h1, w0, w1)] += dy[o];
        } else {
          const T share = dy[o] / static_cast<T>(divisor);
          for (int h = h0; h < h1; ++h)
            for (int w = w0; w < w1; ++w) dx[h * In.w + w] += share;
        }
      });
    }
  }

 private:
  // Calls f(output index, clipped window [h0,h1) x [w0,w1), divisor) for each output cell.
  template <class F>
  static void for_each_window(F&& f) {
    for (int oh = 0; oh < out_shape.h; ++oh) {
      for (int ow = 0; ow < out_shape.w; ++ow) {
        int h0 = oh * S - P, w0 = ow * S - P;
        // Average pooling counts padded cells: its window is clipped at H + P, not H.
        int h1 = std::min(h0 + K, IsMax ? In.h : In.h + P);
        int w1 = std::min(w0 + K, IsMax ? In.w : In.w + P);
        const int divisor = (h1 - h0) * (w1 - w0);
        h0 = std::max(h0, 0);
        w0 = std::max(w0, 0);
        h1 = std::min(h1, In.h);
        w1 = std::min(w1, In.w);
        f(oh * out_shape.w + ow, h0, h1, w0, w1, divisor);
      }
    }
  }

  static int argmax(const T* x, int h0, int h1, int w0, int w1) {
    int best = h0 * In.w + w0;
    for (int h = h0; h < h1; ++h)
      for (int w = w0; w < w1; ++w)
        if (x[h * In.w + w] > x[best]) best = h * In.w + w;
    return best;
  }
};

}  // namespace hcnn
