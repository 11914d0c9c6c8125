// hcnn/backend/cpu/im2col.hpp — unfolding image patches into columns, and the reverse.
//
// col has (C*K*K) rows and (Ho*Wo) columns: row (c, kh, kw) holds, for every output position,
// the input value under that kernel tap (0 in the padding). A convolution is then one GEMM.
#pragma once

#include <algorithm>
#include <cstring>

namespace hcnn::cpu {

template <class T>
void im2col(const T* image, int channels, int height, int width, int kernel, int stride, int pad, int out_h,
            int out_w, T* col) {
  const int rows = channels * kernel * kernel;
#pragma omp parallel for schedule(static) if (static_cast<long>(rows) * out_h * out_w > 65536)
  for (int row = 0; row < rows; ++row) {
    const int kw = row % kernel;
    const int kh = (row / kernel) % kernel;
    const int c = row / (kernel * kernel);
    const T* plane = image + static_cast<long>(c) * height * width;
    T* dst = col + static_cast<long>(row) * out_h * out_w;
    for (int oh = 0; oh < out_h; ++oh) {
      const int ih = oh * stride - pad + kh;
      T* line = dst + static_cast<long>(oh) * out_w;
      if (ih < 0 || ih >= height) {
        std::fill(line, line + out_w, T{0});
        continue;
      }
      const T* src = plane + static_cast<long>(ih) * width;
      if (stride == 1) {
        // The valid output range [lo, hi) maps to a contiguous input run.
        const int lo = std::clamp(pad - kw, 0, out_w);
        const int hi = std::clamp(width + pad - kw, lo, out_w);
        std::fill(line, line + lo, T{0});
        std::memcpy(line + lo, src + lo - pad + kw, sizeof(T) * static_cast<std::size_t>(hi - lo));
        std::fill(line + hi, line + out_w, T{0});
      } else {
        for (int ow = 0; ow < out_w; ++ow) {
          const int iw = ow * stride - pad + kw;
          line[ow] = (iw >= 0 && iw < width) ? src[iw] : T{0};
        }
      }
    }
  }
}

// Adds each column entry back onto the image position it came from. The image is overwritten.
template <class T>
void col2im(const T* col, int channels, int height, int width, int kernel, int stride, int pad, int out_h, int out_w,
            T* image) {
  // Parallel over channels: the rows of one channel write to the same plane.
#pragma omp parallel for schedule(static) if (static_cast<long>(channels) * kernel * kernel * out_h * out_w > 65536)
  for (int c = 0; c < channels; ++c) {
    T* plane = image + static_cast<long>(c) * height * width;
    std::fill(plane, plane + static_cast<long>(height) * width, T{0});
    for (int kh = 0; kh < kernel; ++kh) {
      for (int kw = 0; kw < kernel; ++kw) {
        const T* src = col + ((static_cast<long>(c) * kernel + kh) * kernel + kw) * out_h * out_w;
        for (int oh = 0; oh < out_h; ++oh) {
          const int ih = oh * stride - pad + kh;
          if (ih < 0 || ih >= height) continue;
          T* dst = plane + static_cast<long>(ih) * width;
          const T* line = src + static_cast<long>(oh) * out_w;
          for (int ow = 0; ow < out_w; ++ow) {
            const int iw = ow * stride - pad + kw;
            if (iw >= 0 && iw < width) dst[iw] += line[ow];
          }
        }
      }
    }
  }
}

}  // namespace hcnn::cpu
