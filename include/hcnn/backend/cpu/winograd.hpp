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

// The input and output-gradient transforms work a tile row at a time, in rows of scratch
// indexed by padded column. A row's padding columns are zeroed once per call and never
// written, and rows above or below the map read a row of zeros, so the rows need no copies
// (memcpy and memset calls on rows of a few dozen values took a third of the transforms'
// time). Their inner loops are functions of their own: GCC vectorises a loop over __restrict
// parameters, but not the same loop over __restrict locals.

// The same row of zeros for every padding row: at least `width` values.
template <class T>
const T* zero_row(int width) {
  thread_local std::vector<T> zeros;
  if (zeros.size() < std::size_t(width)) zeros.assign(std::size_t(width), T{0});
  return zeros.data();
}

// q0..q3 = B^T d for `n` columns of four input rows d0..d3 (which may be the same row of
// zeros), B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
template <class T>
void input_rows(const T* d0, const T* d1, const T* d2, const T* d3, T* __restrict q0, T* __restrict q1,
                T* __restrict q2, T* __restrict q3, int n) {
  for (int j = 0; j < n; ++j) {
    q0[j] = d0[j] - d2[j];
    q1[j] = d1[j] + d2[j];
    q2[j] = d2[j] - d1[j];
    q3[j] = d1[j] - d3[j];
  }
}

// (q B)[0..3] of one row q of B^T d for `run` tiles (tile k's columns are q[2k .. 2k + 3]),
// to v0..v3. q_2 is q + 2: read as a second pair of columns, GCC vectorises the loop, which
// it does not for overlapping groups of four columns.
template <class T>
void input_columns(const T* __restrict q, const T* __restrict q_2, T* __restrict v0, T* __restrict v1,
                   T* __restrict v2, T* __restrict v3, int run) {
  for (int k = 0; k < run; ++k) {
    const T c0 = q[2 * k], c1 = q[2 * k + 1], c2 = q_2[2 * k], c3 = q_2[2 * k + 1];
    v0[k] = c0 - c2;
    v1[k] = c1 + c2;
    v2[k] = c2 - c1;
    v3[k] = c1 - c3;
  }
}

// V[e][c][b] = (B^T d B)[e] for tiles [first, first + count) of the batch x (pad `pad`), tiled
// as an out_h x out_w output is: channel by channel (channels [c_begin, c_end)), a tile row at
// a time.
template <class T>
void transform_input(const T* x, const Maps& in, int pad, int out_h, int out_w, long first, int count, T* V,
                     int c_begin, int c_end) {
  const int tiles_w = (out_w + 1) / 2;
  const int tiles = tiles_per_sample(out_h, out_w);
  const std::size_t plane = std::size_t(in.height) * in.width;
  const std::size_t v_tap = std::size_t(in.channels) * count;  // from one tap's V to the next
  const int padded_w = 2 * tiles_w + 2;  // input columns -pad .. 2 * tiles_w + 1 - pad
  thread_local std::vector<T> scratch;
  scratch.assign(std::size_t(4) * padded_w, T{0});
  const auto q = [&](int r) { return scratch.data() + std::size_t(r) * padded_w; };  // B^T d
  const T* zeros = zero_row<T>(in.width);
  for (int c = c_begin; c < c_end; ++c) {
    TileCursor at(first, tiles, tiles_w);
    for (int b = 0; b < count;) {
      const int run = std::min(count - b, tiles_w - at.col);  // tiles left in this tile row
      const T* map = x + std::size_t(at.sample) * in.sample + c * plane;
      const int j0 = 2 * at.col, j1 = 2 * (at.col + run) + 2;  // padded columns the run reads
      const int lo = std::clamp(pad, j0, j1), hi = std::clamp(pad + in.width, lo, j1);  // of them, inside the map
      const T* d[4];
      for (int r = 0; r < 4; ++r) {
        const int y = at.row * 2 - pad + r;
        d[r] = (y >= 0 && y < in.height ? map + std::size_t(y) * in.width : zeros) + (lo - pad);
      }
      input_rows(d[0], d[1], d[2], d[3], q(0) + lo, q(1) + lo, q(2) + lo, q(3) + lo, hi - lo);
      T* v = V + std::size_t(c) * count + b;
      for (int r = 0; r < 4; ++r)
        input_columns(q(r) + j0, q(r) + j0 + 2, v + (r * 4 + 0) * v_tap, v + (r * 4 + 1) * v_tap,
                      v + (r * 4 + 2) * v_tap, v + (r * 4 + 3) * v_tap, run);
      b += run;
      at.advance(run);
    }
  }
}

// Where the outputs of convolve_tiles go: channel o's row r of sample s starts at
// data + s * sample + o * height * width + r * width (height and width those of the output
// maps); bias[o] is added (unless bias is null), then the ReLU applied if relu. Plain data, not
// a callback, so that the transforms are compiled once per element type, not once per layer.
template <class T>
struct Destination {
  T* data;
  std::size_t sample;
  const T* bias = nullptr;
  bool relu = false;
};

// The two output rows A^T m A of `run` tiles in a tile row, A^T = [1 1 1 0; 0 1 -1 -1]: tile
// k's tap (r, c) is m[(4r + c) * m_tap + k]; its outputs go to top and bottom [2k, 2k + 1].
template <class T>
void output_rows(const T* m, std::size_t m_tap, T* __restrict top, T* __restrict bottom, int run) {
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
}

// y[i] = values[i] + bias, through a ReLU if relu, for i < width.
template <class T>
void store_row(const T* __restrict values, T bias, bool relu, T* __restrict y, int width) {
  if (relu) {
    for (int i = 0; i < width; ++i) {
      const T v = values[i] + bias;
      y[i] = v < T{0} ? T{0} : v;  // a NaN stays a NaN, to be caught downstream
    }
  } else {
    for (int i = 0; i < width; ++i) y[i] = values[i] + bias;
  }
}

// Y = A^T m A for tiles [first, first + count) and channels [o_begin, o_end), a tile row at a
// time: its two output rows are built side by side (vectorised over the tiles), then written to
// `to`, clipped to the map.
template <class T>
void transform_output(const T* M, const Maps& out, long first, int count, const Destination<T>& to, int o_begin,
                      int o_end) {
  const int tiles_w = (out.width + 1) / 2;
  const int tiles = tiles_per_sample(out.height, out.width);
  const std::size_t m_tap = std::size_t(out.channels) * count;
  const std::size_t plane = std::size_t(out.height) * out.width;
  thread_local std::vector<T> scratch;
  scratch.resize(std::size_t(4) * tiles_w);
  T* top = scratch.data();
  T* bottom = top + std::size_t(2) * tiles_w;
  for (int o = o_begin; o < o_end; ++o) {
    const T bias = to.bias != nullptr ? to.bias[o] : T{0};
    TileCursor at(first, tiles, tiles_w);
    for (int b = 0; b < count;) {
      const int run = std::min(count - b, tiles_w - at.col);
      output_rows(M + std::size_t(o) * count + b, m_tap, top, bottom, run);
      const int y0 = at.row * 2, x0 = at.col * 2;
      const int width = std::min(2 * run, out.width - x0);
      T* y = to.data + std::size_t(at.sample) * to.sample + o * plane + std::size_t(y0) * out.width + x0;
      store_row(top, bias, to.relu, y, width);
      if (y0 + 1 < out.height) store_row(bottom, bias, to.relu, y + out.width, width);
      b += run;
      at.advance(run);
    }
  }
}

// M[e] (out.channels x count) = U[e] V[e] for one tap e of `count` tiles.
template <class T>
void multiply_tap(const T* U, const Maps& in, const Maps& out, long count, const T* V, T* M, int e) {
  const std::size_t v_tap = std::size_t(in.channels) * count, m_tap = std::size_t(out.channels) * count;
  gemm<false, false>(out.channels, count, in.channels, U + std::size_t(e) * out.channels * in.channels, in.channels,
                     V + e * v_tap, count, M + e * m_tap, count);
}

// Convolves tiles [first, first + count) of the batch: x (pad `pad`) with the transformed
// weights U (taps x out.channels x in.channels), into `to`. V and M hold block_size(...)
// values between them.
template <class T>
void convolve_tiles(const T* x, const Maps& in, int pad, const T* U, const Maps& out, long first, int count, T* V,
                    T* M, const Destination<T>& to) {
  transform_input(x, in, pad, out.height, out.width, first, count, V, 0, in.channels);
  for (int e = 0; e < taps; ++e) multiply_tap(U, in, out, count, V, M, e);
  transform_output(M, out, first, count, to, 0, out.channels);
}

// The weight gradient. The output is linear in u = G g G^T: y = A^T (u .* v) A, so
// dL/du = (A dy A^T) .* v for each tile, summed over tiles, and dL/dg = G^T (dL/du) G.

// t0..t3 = A g for `n` columns of two rows g0, g1 of the output gradient, A = [1 0; 1 1;
// 1 -1; 0 -1].
template <class T>
void output_gradient_rows(const T* g0, const T* g1, T* __restrict t0, T* __restrict t1, T* __restrict t2,
                          T* __restrict t3, int n) {
  for (int j = 0; j < n; ++j) {
    t0[j] = g0[j];
    t1[j] = g0[j] + g1[j];
    t2[j] = g0[j] - g1[j];
    t3[j] = -g1[j];
  }
}

// (t A^T)[0..3] of one row t of A g for `run` tiles (tile k's columns are t[2k], t[2k + 1]).
template <class T>
void output_gradient_columns(const T* __restrict t, T* __restrict d0, T* __restrict d1, T* __restrict d2,
                             T* __restrict d3, int run) {
  for (int k = 0; k < run; ++k) {
    const T c0 = t[2 * k], c1 = t[2 * k + 1];
    d0[k] = c0;
    d1[k] = c0 + c1;
    d2[k] = c0 - c1;
    d3[k] = -c1;
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
  const int padded_w = 2 * tiles_w;
  thread_local std::vector<T> scratch;
  scratch.assign(std::size_t(4) * padded_w, T{0});
  const auto t = [&](int r) { return scratch.data() + std::size_t(r) * padded_w; };  // A dy
  const T* zeros = zero_row<T>(out.width);
  for (int o = 0; o < out.channels; ++o) {
    TileCursor at(first, tiles, tiles_w);
    for (int b = 0; b < count;) {
      const int run = std::min(count - b, tiles_w - at.col);
      const T* map = dy + std::size_t(at.sample) * out.sample + o * plane;
      const int j0 = 2 * at.col, hi = std::min(2 * (at.col + run), out.width);
      const T* g[2];
      for (int r = 0; r < 2; ++r) {
        const int y = at.row * 2 + r;
        g[r] = (y < out.height ? map + std::size_t(y) * out.width : zeros) + j0;
      }
      output_gradient_rows(g[0], g[1], t(0) + j0, t(1) + j0, t(2) + j0, t(3) + j0, hi - j0);
      T* d = D + std::size_t(o) * count + b;
      for (int r = 0; r < 4; ++r)
        output_gradient_columns(t(r) + j0, d + (r * 4 + 0) * d_tap, d + (r * 4 + 1) * d_tap, d + (r * 4 + 2) * d_tap,
                                d + (r * 4 + 3) * d_tap, run);
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
  transform_input(x, in, pad, out.height, out.width, first, count, V, 0, in.channels);
  transform_output_gradient(dy, out, first, count, D);
  const std::size_t v_tap = std::size_t(in.channels) * count, d_tap = std::size_t(out.channels) * count;
  for (int e = 0; e < taps; ++e) {
    gemm_accumulate<false, true>(out.channels, in.channels, count, D + e * d_tap, count, V + e * v_tap, count,
                                 dU + std::size_t(e) * out.channels * in.channels, in.channels);
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
