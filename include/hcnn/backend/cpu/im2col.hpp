// hcnn/backend/cpu/im2col.hpp — unfolding image patches into columns, and the reverse.
//
// col has (C*K*K) rows and (Ho*Wo) columns: row (c, kh, kw) holds, for every output position,
// the input value under that kernel tap (0 in the padding). A convolution is then one GEMM.
#pragma once

#include <algorithm>

namespace hcnn::cpu {

namespace unfold {

// The output columns [lo, hi) of kernel column kw whose input column ow * stride - pad + kw
// lies inside a row of `width`; the others read or write padding.
struct ValidColumns {
  int lo, hi;
};
inline ValidColumns valid_columns(int width, int kernel_column, int stride, int pad, int out_w) {
  const auto ceil_div = [](int a, int b) { return a <= 0 ? 0 : (a + b - 1) / b; };
  const int lo = std::min(out_w, ceil_div(pad - kernel_column, stride));
  const int hi = std::clamp(ceil_div(width + pad - kernel_column, stride), lo, out_w);
  return {lo, hi};
}

// The loops are functions of __restrict pointers, and the common strides are compile-time
// constants, so that GCC vectorises them (contiguous for stride 1, permutes for 2 and 4)
// instead of testing every element against the row's bounds.
template <int Stride, class T>
void gather(const T* __restrict src, int stride, T* __restrict line, int count) {
  const int step = Stride > 0 ? Stride : stride;
  for (int i = 0; i < count; ++i) line[i] = src[i * step];
}
template <int Stride, class T>
void scatter_add(const T* __restrict line, int stride, T* __restrict dst, int count) {
  const int step = Stride > 0 ? Stride : stride;
  for (int i = 0; i < count; ++i) dst[i * step] += line[i];
}

// Calls f.template operator()<S>() with S the stride if it is 1, 2 or 4, else 0 (run time).
template <class F>
void with_stride(int stride, F&& f) {
  switch (stride) {
    case 1: f.template operator()<1>(); break;
    case 2: f.template operator()<2>(); break;
    case 4: f.template operator()<4>(); break;
    default: f.template operator()<0>();
  }
}

}  // namespace unfold

template <class T>
void im2col(const T* image, int channels, int height, int width, int kernel, int stride, int pad, int out_h,
            int out_w, T* col) {
  const int rows = channels * kernel * kernel;
  unfold::with_stride(stride, [&]<int Stride>() {
#pragma omp parallel for schedule(static) if (static_cast<long>(rows) * out_h * out_w > 65536)
    for (int row = 0; row < rows; ++row) {
      const int kw = row % kernel;
      const int kh = (row / kernel) % kernel;
      const int c = row / (kernel * kernel);
      const T* plane = image + static_cast<long>(c) * height * width;
      T* dst = col + static_cast<long>(row) * out_h * out_w;
      const auto [lo, hi] = unfold::valid_columns(width, kw, stride, pad, out_w);
      for (int oh = 0; oh < out_h; ++oh) {
        const int ih = oh * stride - pad + kh;
        T* line = dst + static_cast<long>(oh) * out_w;
        if (ih < 0 || ih >= height) {
          std::fill(line, line + out_w, T{0});
          continue;
        }
        std::fill(line, line + lo, T{0});
        if (hi > lo)
          unfold::gather<Stride>(plane + static_cast<long>(ih) * width + (lo * stride - pad + kw), stride, line + lo,
                                 hi - lo);
        std::fill(line + hi, line + out_w, T{0});
      }
    }
  });
}

// Adds each column entry back onto the image position it came from. The image is overwritten.
template <class T>
void col2im(const T* col, int channels, int height, int width, int kernel, int stride, int pad, int out_h, int out_w,
            T* image) {
  unfold::with_stride(stride, [&]<int Stride>() {
    // Parallel over channels: the rows of one channel write to the same plane.
#pragma omp parallel for schedule(static) if (static_cast<long>(channels) * kernel * kernel * out_h * out_w > 65536)
    for (int c = 0; c < channels; ++c) {
      T* plane = image + static_cast<long>(c) * height * width;
      std::fill(plane, plane + static_cast<long>(height) * width, T{0});
      for (int kh = 0; kh < kernel; ++kh) {
        for (int kw = 0; kw < kernel; ++kw) {
          const T* src = col + ((static_cast<long>(c) * kernel + kh) * kernel + kw) * out_h * out_w;
          const auto [lo, hi] = unfold::valid_columns(width, kw, stride, pad, out_w);
          if (hi <= lo) continue;
          for (int oh = 0; oh < out_h; ++oh) {
            const int ih = oh * stride - pad + kh;
            if (ih < 0 || ih >= height) continue;
            unfold::scatter_add<Stride>(src + static_cast<long>(oh) * out_w + lo, stride,
                                        plane + static_cast<long>(ih) * width + (lo * stride - pad + kw), hi - lo);
          }
        }
      }
    }
  });
}

}  // namespace hcnn::cpu
