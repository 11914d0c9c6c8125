// hcnn/backend/cpu/winograd.hpp — 3x3 stride-1 convolution by Winograd's F(2x2, 3x3).
//
// Each 2x2 block of outputs ("tile") is computed from the 4x4 input patch under it with 16
// multiplications per (input, output) channel pair instead of 36 (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2016):  Y = A^T [ (G g G^T) .* (B^T d B) ] A.
// The element-wise products over channels become 16 GEMMs, one per position e of the 4x4
// transformed tile:  M[e] (out x tiles) = U[e] (out x in) * V[e] (in x tiles).
//
// Tiles are numbered across the whole batch (sample-major, then row-major within a sample) and
// processed in blocks, so a small map still gives its GEMMs many columns (tiles of several
// samples side by side) and a large one keeps a block's V and M in cache. The same pieces
// give the input gradient (a convolution of the output gradient) and the weight gradient.
// F(2x2, 3x3) keeps float rounding close to direct convolution: its transforms use only +, -
// and halving (tests/test_winograd.cpp bounds the difference at VGG's widths). The larger
// F(4x4, 3x3) would save more multiplications, but its transform coefficients reach 8 and cost
// more precision in float; it is not tried here.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "eigen.hpp"

namespace hcnn::cpu::winograd {

inline constexpr int taps = 16;  // positions of a transformed 4x4 tile

// Tiles per sample for an out_h x out_w output (the last row/column of tiles may overhang).
constexpr int tiles_per_sample(int out_h, int out_w) { return ((out_h + 1) / 2) * ((out_w + 1) / 2); }

// Tiles per block for a convolution of `in` to `out` channels: V and M of one block together
// hold about 2^18 values (1 MB of floats), so they stay in a core's L2 cache between the
// transforms and the GEMMs. Measured on VGG-19's shapes (docs/performance.md), 32-64 tiles
// were as fast as any; smaller blocks lose GEMM width, larger ones the cache.
constexpr int block_tiles(int in, int out) { return std::clamp((1 << 14) / (in + out), 32, 256); }

// The weight gradient's products sum over the tiles (D[e] V[e]^T, out x tiles x in): each
// block adds into the whole out x in gradient, which for wide layers is large (16 MB for
// 512 x 512), so their blocks are at least 64 tiles long. Otherwise the same 1 MB budget: twice
// it (2^19 values, more than this L2 holds beside the gradient) made the backward pass of
// SmallVD's 96-channel layers 2x slower (docs/performance.md).
constexpr int weight_block_tiles(int in, int out) { return std::clamp((1 << 14) / (in + out), 64, 2048); }

// Values one block of `tiles` tiles needs for V (taps x in x tiles) and M or D (taps x out x tiles).
constexpr std::size_t block_size(int in, int out, int tiles) {
  return std::size_t{taps} * std::size_t(in + out) * std::size_t(tiles);
}

// u[e * stride] (4x4, row-major) = G g G^T for one 3x3 kernel g, G = [1 0 0; .5 .5 .5;
// .5 -.5 .5; 0 0 1]. Tap (r, c) of g is g[(r * 3 + c) * step]: a kernel rotated by 180 degrees
// is read by passing its last tap and a step of -1.
template <class T>
void transform_kernel(const T* g, int step, T* u, std::size_t stride) {
  T t[4][3];  // G g
  for (int c = 0; c < 3; ++c) {
    const T g0 = g[c * step], g1 = g[(3 + c) * step], g2 = g[(6 + c) * step];
    t[0][c] = g0;
    t[1][c] = T(0.5) * (g0 + g1 + g2);
    t[2][c] = T(0.5) * (g0 - g1 + g2);
    t[3][c] = g2;
  }
  for (int r = 0; r < 4; ++r) {  // (G g) G^T
    const T a = t[r][0], b = t[r][1], c = t[r][2];
    u[(r * 4 + 0) * stride] = a;
    u[(r * 4 + 1) * stride] = T(0.5) * (a + b + c);
    u[(r * 4 + 2) * stride] = T(0.5) * (a - b + c);
    u[(r * 4 + 3) * stride] = c;
  }
}

// Runs body(row, buffer) for rows [0, rows) on OpenMP's threads, each thread with a buffer of
// taps x cols values. A row of U (taps x rows x cols) lies in 16 planes, its values 16 planes
// apart; moving it through the buffer a tap at a time reads and writes U in runs instead.
template <class T, class Body>
void for_each_row_of_taps(int rows, int cols, Body&& body) {
#pragma omp parallel if (std::size_t(rows) * cols > 4096)
  {
    thread_local std::vector<T> row_taps;  // grows once: no allocation after the first call
    row_taps.resize(std::size_t{taps} * cols);
#pragma omp for schedule(static)
    for (int row = 0; row < rows; ++row) body(row, row_taps.data());
  }
}

// U[e][row][col] (taps x rows x cols), U[.][row][col] the transform of kernel(row, col).
template <class T, class Kernel>
void transform_rows(int rows, int cols, T* U, Kernel&& kernel) {
  const std::size_t plane = std::size_t(rows) * cols;
  for_each_row_of_taps<T>(rows, cols, [&](int row, T* row_taps) {
    for (int col = 0; col < cols; ++col) {
      const auto [g, step] = kernel(row, col);
      transform_kernel<T>(g, step, row_taps + col, std::size_t(cols));
    }
    for (int e = 0; e < taps; ++e)
      std::copy_n(row_taps + std::size_t(e) * cols, cols, U + e * plane + std::size_t(row) * cols);
  });
}

// U[e][o][c] for a convolution weight w[o][c][3][3] (out x in kernels).
template <class T>
void transform_weights(const T* w, int out, int in, T* U) {
  transform_rows<T>(out, in, U, [&](int o, int c) { return std::pair{w + (std::size_t(o) * in + c) * 9, 1}; });
}

// The kernels of the input gradient: the gradient of a 3x3 stride-1 convolution with pad p is
// the convolution of the output gradient, padded by 2 - p, with every kernel rotated by 180
// degrees and the roles of input and output channels swapped. U[e][c][o] from w[o][c][3][3].
template <class T>
void transform_weights_for_input_gradient(const T* w, int out, int in, T* U) {
  transform_rows<T>(in, out, U, [&](int c, int o) { return std::pair{w + (std::size_t(o) * in + c) * 9 + 8, -1}; });
}

// A batch of maps, channel by channel: sample s, channel c starts at data + s*sample + c*h*w.
struct Maps {
  int channels, height, width;
  std::size_t sample;  // values from one sample to the next (more than channels*h*w for a group)
};

// Walks tiles in their numbering: sample, then tile row, then tile column.
struct TileCursor {
  long sample;
  int row, col, tiles_h, tiles_w;
  TileCursor(long tile, int tiles, int tiles_w)
      : sample(tile / tiles),
        row(int(tile % tiles) / tiles_w),
        col(int(tile % tiles) % tiles_w),
        tiles_h(tiles / tiles_w),
        tiles_w(tiles_w) {}
  // Moves n tiles on, n at most the tiles left in the current tile row.
  void advance(int n) {
    if ((col += n) < tiles_w) return;
    col = 0;
    if (++row < tiles_h) return;
    row = 0;
    ++sample;
  }
};

// The input and output-gradient transforms read a tile row's columns split into even and odd
// ones, so that tile k's columns 2k .. 2k + 3 are e[k], o[k], e[k + 1], o[k + 1]: contiguous,
// and the loop over a row's tiles vectorises (with the columns interleaved GCC does not
// vectorise it). No row goes through memcpy or memset: their calls on rows of a few dozen
// values took a third of the transforms' time.

template <class T>
void deinterleave(const T* __restrict x, T* __restrict even, T* __restrict odd, int pairs) {
  for (int i = 0; i < pairs; ++i) {
    even[i] = x[2 * i];
    odd[i] = x[2 * i + 1];
  }
}

// For each of `count` rows: even[r][i] = x_r(first + 2i), odd[r][i] = x_r(first + 2i + 1) for
// i < pairs, where x_r(j) is rows[r][j] inside [0, width) and 0 outside (the padding);
// rows[r] == nullptr is a row of padding. even[r] is even + r * stride, odd[r] likewise.
template <class T>
void split_rows(const T* const* rows, int count, int width, int first, T* even, T* odd, int stride, int pairs) {
  // Pairs [lo, hi) lie inside a row: first + 2i >= 0 and first + 2i + 1 < width.
  const int lo = std::clamp((1 - first) / 2, 0, pairs);
  const int hi = std::clamp(first >= width - 1 ? 0 : (width - first) / 2, lo, pairs);
  for (int r = 0; r < count; ++r) {
    const T* row = rows[r];
    T* e = even + std::size_t(r) * stride;
    T* o = odd + std::size_t(r) * stride;
    if (row == nullptr) {
      for (int i = 0; i < pairs; ++i) e[i] = o[i] = T{0};
      continue;
    }
    const auto x = [&](int j) { return j >= 0 && j < width ? row[j] : T{0}; };
    for (int i = 0; i < lo; ++i) e[i] = x(first + 2 * i), o[i] = x(first + 2 * i + 1);
    deinterleave(row + (first + 2 * lo), e + lo, o + lo, hi - lo);
    for (int i = hi; i < pairs; ++i) e[i] = x(first + 2 * i), o[i] = x(first + 2 * i + 1);
  }
}

// V's taps of `run` tiles in a row, from the split input rows under them (rows of `stride`):
// tap (r, s) of tile k, at v[(4r + s) * v_tap + k], is (B^T d B)[r][s], B^T = [1 0 -1 0;
// 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
template <class T>
void input_tiles(const T* even, const T* odd, int stride, T* v, std::size_t v_tap, int run) {
#pragma omp simd
  for (int k = 0; k < run; ++k) {
    T q[4][4];  // B^T d: q[r][s] at column 2k + s
    for (int s = 0; s < 4; ++s) {
      const T* column = ((s & 1) != 0 ? odd : even) + k + (s >> 1);
      const T d0 = column[0], d1 = column[stride], d2 = column[2 * stride], d3 = column[3 * stride];
      q[0][s] = d0 - d2;
      q[1][s] = d1 + d2;
      q[2][s] = d2 - d1;
      q[3][s] = d1 - d3;
    }
    for (int r = 0; r < 4; ++r) {
      v[(r * 4 + 0) * v_tap + k] = q[r][0] - q[r][2];
      v[(r * 4 + 1) * v_tap + k] = q[r][1] + q[r][2];
      v[(r * 4 + 2) * v_tap + k] = q[r][2] - q[r][1];
      v[(r * 4 + 3) * v_tap + k] = q[r][1] - q[r][3];
    }
  }
}

// V[e][c][b] = (B^T d B)[e] for tiles [first, first + count) of the batch x (pad `pad`), tiled
// as an out_h x out_w output is: channel by channel, a tile row at a time.
template <class T>
void transform_input(const T* x, const Maps& in, int pad, int out_h, int out_w, long first, int count, T* V) {
  const int tiles_w = (out_w + 1) / 2;
  const int tiles = tiles_per_sample(out_h, out_w);
  const std::size_t plane = std::size_t(in.height) * in.width;
  const std::size_t v_tap = std::size_t(in.channels) * count;  // from one tap's V to the next
  const int half_w = tiles_w + 1;  // pairs of padded columns under a tile row
  thread_local std::vector<T> scratch;
  scratch.resize(std::size_t(8) * half_w);
  T* even = scratch.data();  // the four input rows' even columns, rows of half_w
  T* odd = even + std::size_t(4) * half_w;
  for (int c = 0; c < in.channels; ++c) {
    TileCursor at(first, tiles, tiles_w);
    for (int b = 0; b < count;) {
      const int run = std::min(count - b, tiles_w - at.col);  // tiles left in this tile row
      const T* map = x + std::size_t(at.sample) * in.sample + c * plane;
      const T* rows[4];
      for (int r = 0; r < 4; ++r) {
        const int y = at.row * 2 - pad + r;
        rows[r] = y >= 0 && y < in.height ? map + std::size_t(y) * in.width : nullptr;
      }
      split_rows(rows, 4, in.width, 2 * at.col - pad, even, odd, half_w, run + 1);
      input_tiles(even, odd, half_w, V + std::size_t(c) * count + b, v_tap, run);
      b += run;
      at.advance(run);
    }
  }
}

// Y = A^T m A for tiles [first, first + count), A^T = [1 1 1 0; 0 1 -1 -1], a tile row at a
// time: its two output rows are built side by side (vectorised over the tiles), then handed to
// store(sample, channel, row, first column, values, count), clipped to the map.
template <class T, class Store>
void transform_output(const T* M, const Maps& out, long first, int count, Store&& store) {
  const int tiles_w = (out.width + 1) / 2;
  const int tiles = tiles_per_sample(out.height, out.width);
  const std::size_t m_tap = std::size_t(out.channels) * count;
  thread_local std::vector<T> scratch;
  scratch.resize(std::size_t(4) * tiles_w);
  T* __restrict top = scratch.data();
  T* __restrict bottom = top + std::size_t(2) * tiles_w;
  for (int o = 0; o < out.channels; ++o) {
    TileCursor at(first, tiles, tiles_w);
    for (int b = 0; b < count;) {
      const int run = std::min(count - b, tiles_w - at.col);
      const T* __restrict m = M + std::size_t(o) * count + b;
      for (int k = 0; k < run; ++k) {
        T t0[4], t1[4];  // A^T m, column by column
        for (int c = 0; c < 4; ++c) {
          const T m0 = m[(0 * 4 + c) * m_tap + k], m1 = m[(1 * 4 + c) * m_tap + k], m2 = m[(2 * 4 + c) * m_tap + k],
                  m3 = m[(3 * 4 + c) * m_tap + k];
          t0[c] = m0 + m1 + m2;
          t1[c] = m1 - m2 - m3;
        }
        top[2 * k] = t0[0] + t0[1] + t0[2];
        top[2 * k + 1] = t0[1] - t0[2] - t0[3];
        bottom[2 * k] = t1[0] + t1[1] + t1[2];
        bottom[2 * k + 1] = t1[1] - t1[2] - t1[3];
      }
      const int y0 = at.row * 2, x0 = at.col * 2;
      const int width = std::min(2 * run, out.width - x0);
      store(at.sample, o, y0, x0, static_cast<const T*>(top), width);
      if (y0 + 1 < out.height) store(at.sample, o, y0 + 1, x0, static_cast<const T*>(bottom), width);
      b += run;
      at.advance(run);
    }
  }
}

// Convolves tiles [first, first + count) of the batch: x (pad `pad`) with the transformed
// weights U (taps x out.channels x in.channels), handing the outputs to store(sample, channel,
// row, first column, values, count) a row segment at a time. V and M hold block_size(...)
// values between them.
template <class T, class Store>
void convolve_tiles(const T* x, const Maps& in, int pad, const T* U, const Maps& out, long first, int count, T* V,
                    T* M, Store&& store) {
  transform_input(x, in, pad, out.height, out.width, first, count, V);
  const std::size_t v_tap = std::size_t(in.channels) * count, m_tap = std::size_t(out.channels) * count;
  for (int e = 0; e < taps; ++e) {
    MatrixMap<T>(M + e * m_tap, out.channels, count).noalias() =
        ConstMatrixMap<T>(U + std::size_t(e) * out.channels * in.channels, out.channels, in.channels) *
        ConstMatrixMap<T>(V + e * v_tap, in.channels, count);
  }
  transform_output(M, out, first, count, std::forward<Store>(store));
}

// The weight gradient. The output is linear in u = G g G^T: y = A^T (u .* v) A, so
// dL/du = (A dy A^T) .* v for each tile, summed over tiles, and dL/dg = G^T (dL/du) G.

// D's taps of `run` tiles in a row of the output gradient, from its two split rows (rows of
// `stride`): tap (r, s) of tile k, at d[(4r + s) * d_tap + k], is (A g A^T)[r][s], A = [1 0;
// 1 1; 1 -1; 0 -1].
template <class T>
void output_gradient_tiles(const T* even, const T* odd, int stride, T* d, std::size_t d_tap, int run) {
#pragma omp simd
  for (int k = 0; k < run; ++k) {
    T t[4][2];  // A g: t[r][s] at column 2k + s
    for (int s = 0; s < 2; ++s) {
      const T* column = (s != 0 ? odd : even) + k;
      const T g0 = column[0], g1 = column[stride];
      t[0][s] = g0;
      t[1][s] = g0 + g1;
      t[2][s] = g0 - g1;
      t[3][s] = -g1;
    }
    for (int r = 0; r < 4; ++r) {
      d[(r * 4 + 0) * d_tap + k] = t[r][0];
      d[(r * 4 + 1) * d_tap + k] = t[r][0] + t[r][1];
      d[(r * 4 + 2) * d_tap + k] = t[r][0] - t[r][1];
      d[(r * 4 + 3) * d_tap + k] = -t[r][1];
    }
  }
}

// D[e][o][b] = (A dy A^T)[e] for the output-gradient tiles [first, first + count); the values
// of an overhanging tile outside the map are 0 (those outputs do not exist). As in
// transform_input, channel by channel, a tile row at a time.
template <class T>
void transform_output_gradient(const T* dy, const Maps& out, long first, int count, T* D) {
  const int tiles_w = (out.width + 1) / 2;
  const int tiles = tiles_per_sample(out.height, out.width);
  const std::size_t plane = std::size_t(out.height) * out.width;
  const std::size_t d_tap = std::size_t(out.channels) * count;
  thread_local std::vector<T> scratch;
  scratch.resize(std::size_t(4) * tiles_w);
  T* even = scratch.data();  // the two rows' even columns, rows of tiles_w
  T* odd = even + std::size_t(2) * tiles_w;
  for (int o = 0; o < out.channels; ++o) {
    TileCursor at(first, tiles, tiles_w);
    for (int b = 0; b < count;) {
      const int run = std::min(count - b, tiles_w - at.col);
      const T* map = dy + std::size_t(at.sample) * out.sample + o * plane;
      const T* rows[2];
      for (int r = 0; r < 2; ++r) {
        const int y = at.row * 2 + r;
        rows[r] = y < out.height ? map + std::size_t(y) * out.width : nullptr;
      }
      split_rows(rows, 2, out.width, 2 * at.col, even, odd, tiles_w, run);
      output_gradient_tiles(even, odd, tiles_w, D + std::size_t(o) * count + b, d_tap, run);
      b += run;
      at.advance(run);
    }
  }
}

// dU[e] (taps x out.channels x in.channels) += D[e] V[e]^T over tiles [first, first + count) of
// the input x and the output gradient dy. V and D hold block_size(...) values between them.
template <class T>
void accumulate_weight_gradient(const T* x, const Maps& in, int pad, const T* dy, const Maps& out, long first,
                                int count, T* V, T* D, T* dU) {
  transform_input(x, in, pad, out.height, out.width, first, count, V);
  transform_output_gradient(dy, out, first, count, D);
  const std::size_t v_tap = std::size_t(in.channels) * count, d_tap = std::size_t(out.channels) * count;
  for (int e = 0; e < taps; ++e) {
    MatrixMap<T>(dU + std::size_t(e) * out.channels * in.channels, out.channels, in.channels).noalias() +=
        ConstMatrixMap<T>(D + e * d_tap, out.channels, count) *
        ConstMatrixMap<T>(V + e * v_tap, in.channels, count).transpose();
  }
}

// dw[o][c][3][3] = G^T dU[.][o][c] G, a row of dU at a time.
template <class T>
void kernel_gradients(const T* dU, int out, int in, T* dw) {
  const std::size_t plane = std::size_t(out) * in;
  for_each_row_of_taps<T>(out, in, [&](int o, T* row_taps) {
    for (int e = 0; e < taps; ++e)
      std::copy_n(dU + e * plane + std::size_t(o) * in, in, row_taps + std::size_t(e) * in);
    for (int c = 0; c < in; ++c) {
      const T* u = row_taps + c;
      const auto x = [&](int r, int k) { return u[std::size_t(r * 4 + k) * in]; };
      T r3[3][4];  // G^T X
      for (int k = 0; k < 4; ++k) {
        const T x0 = x(0, k), x1 = x(1, k), x2 = x(2, k), x3 = x(3, k);
        r3[0][k] = x0 + T(0.5) * (x1 + x2);
        r3[1][k] = T(0.5) * (x1 - x2);
        r3[2][k] = T(0.5) * (x1 + x2) + x3;
      }
      T* g = dw + (std::size_t(o) * in + c) * 9;
      for (int r = 0; r < 3; ++r) {  // (G^T X) G
        g[r * 3 + 0] = r3[r][0] + T(0.5) * (r3[r][1] + r3[r][2]);
        g[r * 3 + 1] = T(0.5) * (r3[r][1] - r3[r][2]);
        g[r * 3 + 2] = T(0.5) * (r3[r][1] + r3[r][2]) + r3[r][3];
      }
    }
  });
}

}  // namespace hcnn::cpu::winograd
