// hcnn/backend/cpu/conv.hpp — Conv on the CPU: im2col per group + Eigen GEMM, the samples of a
// batch on parallel lanes (parallel.hpp); 3x3 stride-1 convolutions by Winograd (winograd.hpp)
// in all three products (output, weight gradient, input gradient), in blocks of tiles on the
// lanes or, for wide layers with few tiles, by taps (convolve_by_taps). The layer binds its
// compile-time shapes to a ConvGeometry and calls kernels compiled once per element type.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <span>

#include "../../core/layer.hpp"
#include "../../layers/conv.hpp"
#include "activation.hpp"
#include "eigen.hpp"
#include "im2col.hpp"
#include "parallel.hpp"
#include "winograd.hpp"

namespace hcnn {

namespace cpu {

// A convolution's shapes as runtime values. The kernels below take one instead of being
// templates of the layer, so they are compiled once per element type however many
// convolutions a program declares (the experiment's translation unit has 18 of them).
struct ConvGeometry {
  int in_c, in_h, in_w;     // input
  int out_c, out_h, out_w;  // output
  int kernel, stride, pad, groups;
  bool relu;  // the fused activation: ReLU or Identity

  constexpr int in_group() const { return in_c / groups; }    // input channels per group
  constexpr int out_group() const { return out_c / groups; }  // output channels per group
  constexpr int patch() const { return in_group() * kernel * kernel; }  // rows of the column matrix
  constexpr int positions() const { return out_h * out_w; }
  constexpr int in_plane() const { return in_h * in_w; }
  constexpr std::size_t in_size() const { return std::size_t(in_c) * in_plane(); }
  constexpr std::size_t out_size() const { return std::size_t(out_c) * positions(); }
  // A 1x1, stride-1, unpadded convolution reads its input as the column matrix directly.
  constexpr bool pointwise() const { return kernel == 1 && stride == 1 && pad == 0; }
  // 3x3 stride 1 (all of VGG, CaffeNet's conv3-5): Winograd F(2x2, 3x3). The input gradient is
  // a 3x3 stride-1 convolution with pad 2 - P, so wider padding than 2 stays with im2col.
  // Below 16 input channels per group (VGG's conv1_1 reads 3) the transforms cost more than
  // the multiplications they save: 13 GFLOP/s against im2col's 36 on conv1_1.
  constexpr bool use_winograd() const { return kernel == 3 && stride == 1 && pad <= 2 && in_group() >= 16; }

  // im2col, per lane (cpu::lanes): the column matrix, and in backward also the lane's partial
  // weight and bias gradients after it (so forward, inference above all, needs only the columns).
  constexpr std::size_t column_size() const { return pointwise() ? 0 : std::size_t(patch()) * positions(); }
  constexpr std::size_t lane_size() const { return column_size() + std::size_t(out_c) * patch() + out_c; }

  // Winograd: the transformed weights of every group (or, for the weight gradient, each lane's
  // partial sum of them), and each lane's block of tiles (winograd.hpp).
  constexpr std::size_t transformed_size() const { return std::size_t{winograd::taps} * out_c * in_group(); }
  constexpr std::size_t group_transformed() const { return transformed_size() / groups; }
  constexpr int block() const { return winograd::block_tiles(in_group(), out_group()); }  // at most; both ways
  constexpr std::size_t block_size() const { return winograd::block_size(in_group(), out_group(), block()); }
  constexpr int weight_block() const { return winograd::weight_block_tiles(in_group(), out_group()); }
  constexpr std::size_t weight_block_size() const {
    return winograd::block_size(in_group(), out_group(), weight_block());
  }
  constexpr int out_tiles() const { return winograd::tiles_per_sample(out_h, out_w); }
  // By taps (convolve_by_taps): V and M of every tile of n samples of `tiles` tiles each.
  constexpr std::size_t by_taps_size(int n, int tiles) const {
    return std::size_t{winograd::taps} * std::size_t(in_c + out_c) * std::size_t(n) * std::size_t(tiles);
  }
  // Whether n samples of `tiles` tiles go by taps rather than in blocks: where the transformed
  // weights are large (each block packs all of them for its GEMMs; from 128 x 256 on, packing
  // them once per block costs more than V and M moving through memory once) and V and M of
  // the whole batch fit in 32 MB (VGG's conv3-5 at batch 1, conv5 at batch 8).
  constexpr bool by_taps(int n, int tiles) const {
    return in_group() * out_group() >= (1 << 15) && by_taps_size(n, tiles) <= (std::size_t{1} << 23);
  }
  // Workspace for the tiles of a pass over n samples, after the transformed weights.
  std::size_t tiles_size(int n, int tiles) const;
  constexpr int in_tiles() const { return winograd::tiles_per_sample(in_h, in_w); }
  constexpr winograd::Maps input_maps() const { return {in_group(), in_h, in_w, in_size()}; }
  constexpr winograd::Maps output_maps() const { return {out_group(), out_h, out_w, out_size()}; }

  // Whether backward can write the input gradient over the output gradient (din == dout): by
  // Winograd, with equal input and output sizes (all of VGG's 3x3 layers but the first of each
  // stage). The input gradient of a chunk of samples goes to scratch after the lanes' blocks,
  // then over the chunk's output gradient, which nothing reads any more.
  constexpr bool input_gradient_in_place() const { return use_winograd() && in_size() == out_size(); }
  // Samples per chunk: one per lane, or more where a sample has too few tiles to give each
  // lane a full block (SmallVD's 8x8 maps have 16).
  int in_place_chunk(int n) const {
    const int lane_count = lanes(n);
    return std::min(n, std::max(lane_count, (lane_count * block() + in_tiles() - 1) / in_tiles()));
  }
};

// Blocks of at most `most` tiles for n samples: a multiple of the lanes, so that none waits
// for another (VGG's conv5 at batch 1 has 49 tiles: 32 + 17 would leave one lane idle half
// the time).
inline int winograd_blocks(int n, int tiles_per_sample, int most) {
  const long total = long(n) * tiles_per_sample;
  const int lane_count = lanes(int(std::min<long>(total, 1 << 30)));
  const long needed = (total + most - 1) / most;
  return int(std::min<long>(total, (needed + lane_count - 1) / lane_count * lane_count));
}
inline std::size_t lanes_of_blocks(int n, int tiles_per_sample, int most) {
  return std::size_t(lanes(winograd_blocks(n, tiles_per_sample, most)));
}
inline std::size_t ConvGeometry::tiles_size(int n, int tiles) const {
  return by_taps(n, tiles) ? by_taps_size(n, tiles) : lanes_of_blocks(n, tiles, block()) * block_size();
}

// Runs body(first tile, tile count, lane workspace) for every block (of at most `most` tiles)
// of the batch's tiles (n samples of tiles_per_sample), the blocks on parallel lanes; lane l's
// workspace starts at lanes_ws + l * lane_stride.
template <Deal deal = Deal::on_demand, class T, class Body>
void for_each_block(int n, int tiles_per_sample, int most, T* lanes_ws, std::size_t lane_stride, Body&& body) {
  const long total = long(n) * tiles_per_sample;
  const int count = winograd_blocks(n, tiles_per_sample, most);
  for_each_sample<deal>(count, lanes(count), [&](int b, int lane) {
    // Block b: tiles [total * b / count, total * (b + 1) / count), at most `most` of them.
    const long first = total * b / count;
    body(first, int(total * (b + 1) / count - first), lanes_ws + lane * lane_stride);
  });
}

// Values (of the element type) of workspace a convolution needs for a pass over n samples.
inline std::size_t conv_workspace_values(const ConvGeometry& g, int n, Pass pass) {
  if (!g.use_winograd()) return std::size_t(lanes(n)) * (pass == Pass::forward ? g.column_size() : g.lane_size());
  // Forward and the input gradient: the transformed weights, then the lanes' blocks or the V
  // and M of every tile (by taps). The weight gradient, which runs first in backward: each
  // lane's partial sum and block. In place, the input gradient runs a chunk of samples at a
  // time, with the chunk's scratch.
  const bool in_place = pass == Pass::backward && g.input_gradient_in_place();
  const int samples = in_place ? g.in_place_chunk(n) : n;
  std::size_t values = g.transformed_size() +
                       g.tiles_size(samples, pass == Pass::forward ? g.out_tiles() : g.in_tiles()) +
                       (in_place ? std::size_t(samples) * g.in_size() : 0);
  if (pass == Pass::backward)
    values = std::max(values, lanes_of_blocks(n, g.out_tiles(), g.weight_block()) *
                                  (g.transformed_size() + g.weight_block_size()));
  return values;
}

// The column matrix of one group of one sample's input x: x itself for a pointwise convolution.
template <class T>
const T* columns(const ConvGeometry& g, const T* x, T* ws) {
  if (g.pointwise()) return x;
  im2col(x, g.in_group(), g.in_h, g.in_w, g.kernel, g.stride, g.pad, g.out_h, g.out_w, ws);
  return ws;
}

template <class T>
void conv_forward_im2col(const ConvGeometry& g, const T* weight, const T* bias, const T* in, T* out, int n, T* ws) {
  for_each_sample(n, lanes(n), [&](int s, int lane) {
    T* lane_ws = ws + std::size_t(lane) * g.column_size();
    const T* x = in + s * g.in_size();
    T* y = out + s * g.out_size();
    for (int group = 0; group < g.groups; ++group) {
      const T* col = columns(g, x + group * g.in_group() * g.in_plane(), lane_ws);
      gemm<false, false>(g.out_group(), g.positions(), g.patch(), weight + group * g.out_group() * g.patch(), g.patch(),
                         col, g.positions(), y + group * g.out_group() * g.positions(), g.positions());
    }
    MatrixMap<T>(y, g.out_c, g.positions()).colwise() += ConstVectorMap<T>(bias, g.out_c);
    if (g.relu) activate<ReLU>(y, g.out_size());
  });
}

template <class T>
void conv_backward_im2col(const ConvGeometry& g, const T* weight, T* weight_grad, T* bias_grad, const T* in,
                          const T* out, T* dout, T* din, int n, T* ws) {
  const int lane_count = lanes(n);
  const int out_c = g.out_c, patch = g.patch(), positions = g.positions();
  // One lane accumulates straight into the gradients; several into their own partial sums.
  auto dweight_of = [&](int lane) {
    return lane_count == 1 ? weight_grad : ws + std::size_t(lane) * g.lane_size() + g.column_size();
  };
  auto dbias_of = [&](int lane) {
    return lane_count == 1 ? bias_grad : ws + std::size_t(lane) * g.lane_size() + g.column_size() + out_c * patch;
  };
  for (int lane = 0; lane < lane_count; ++lane) {
    MatrixMap<T>(dweight_of(lane), out_c, patch).setZero();
    VectorMap<T>(dbias_of(lane), out_c).setZero();
  }
  for_each_sample<Deal::fixed>(n, lane_count, [&](int s, int lane) {
    T* col_ws = ws + std::size_t(lane) * g.lane_size();
    T* dweight = dweight_of(lane);
    VectorMap<T> dbias(dbias_of(lane), out_c);
    const T* x = in + s * g.in_size();
    T* dy = dout + s * g.out_size();
    if (g.relu) activate_backward<ReLU>(out + s * g.out_size(), dy, g.out_size());
    dbias += ConstMatrixMap<T>(dy, out_c, positions).rowwise().sum();
    for (int group = 0; group < g.groups; ++group) {
      const T* dy_g = dy + group * g.out_group() * positions;
      // The columns are recomputed rather than kept from the forward pass, as Caffe does: for
      // VGG-19 at batch 32 they would take gigabytes.
      const T* col = columns(g, x + group * g.in_group() * g.in_plane(), col_ws);
      gemm_accumulate<false, true>(g.out_group(), patch, positions, dy_g, positions, col, positions,
                                   dweight + group * g.out_group() * patch, patch);
      if (din == nullptr) continue;
      T* dx_g = din + s * g.in_size() + group * g.in_group() * g.in_plane();
      // The columns are no longer needed, so their gradient reuses the lane's workspace.
      T* dcol = g.pointwise() ? dx_g : col_ws;
      gemm<true, false>(patch, positions, g.out_group(), weight + group * g.out_group() * patch, patch, dy_g, positions,
                        dcol, positions);
      if (!g.pointwise())
        col2im(dcol, g.in_group(), g.in_h, g.in_w, g.kernel, g.stride, g.pad, g.out_h, g.out_w, dx_g);
    }
  });
  if (lane_count == 1) return;
  MatrixMap<T> dweight(weight_grad, out_c, patch);
  VectorMap<T> dbias(bias_grad, out_c);
  dweight = MatrixMap<T>(dweight_of(0), out_c, patch);
  dbias = VectorMap<T>(dbias_of(0), out_c);
  for (int lane = 1; lane < lane_count; ++lane) {  // in lane order: deterministic
    dweight += MatrixMap<T>(dweight_of(lane), out_c, patch);
    dbias += VectorMap<T>(dbias_of(lane), out_c);
  }
}

// Winograd by taps, for wide layers with few tiles (ConvGeometry::by_taps): every tile of the
// n samples is transformed at once (input channels on the lanes), then each tap's GEMM runs
// over all the tiles (taps on the lanes), then the outputs are transformed back (output
// channels on the lanes). In blocks, every block's GEMMs pack all of U again: at batch 1,
// VGG-19's forward spent 18 % of its time in that packing (conv4_x packs 16.8 MB eight times a
// pass). By taps each tap of U is packed once, and V and M pass through memory instead of
// staying in L2. x, in, pad, U, out and `to` as in winograd::convolve_tiles, for `groups`
// groups side by side; ws holds V and M (by_taps_size values).
template <class T>
void convolve_by_taps(int groups, const T* x, const winograd::Maps& in, int pad, const T* U, const winograd::Maps& out,
                      int n, T* ws, const winograd::Destination<T>& to) {
  constexpr int taps = winograd::taps;
  const long tiles = long(n) * winograd::tiles_per_sample(out.height, out.width);
  const std::size_t in_plane = std::size_t(in.height) * in.width, out_plane = std::size_t(out.height) * out.width;
  const std::size_t v_group = taps * std::size_t(in.channels) * tiles;  // V, M and U of a group
  const std::size_t m_group = taps * std::size_t(out.channels) * tiles;
  const std::size_t u_group = taps * std::size_t(out.channels) * in.channels;
  T* V = ws;
  T* M = ws + groups * v_group;
  const int channels_in = groups * in.channels, channels_out = groups * out.channels, products = groups * taps;
  for_each_sample(channels_in, lanes(channels_in), [&](int i, int) {
    const int group = i / in.channels, c = i % in.channels;
    winograd::transform_input(x + group * in.channels * in_plane, in, pad, out.height, out.width, 0, int(tiles),
                              V + group * v_group, c, c + 1);
  });
  for_each_sample(products, lanes(products), [&](int i, int) {
    const int group = i / taps, e = i % taps;
    winograd::multiply_tap(U + group * u_group, in, out, tiles, V + group * v_group, M + group * m_group, e);
  });
  for_each_sample(channels_out, lanes(channels_out), [&](int i, int) {
    const int group = i / out.channels, o = i % out.channels;
    const winograd::Destination<T> d{to.data + group * out.channels * out_plane, to.sample,
                                     to.bias != nullptr ? to.bias + group * out.channels : nullptr, to.relu};
    winograd::transform_output(M + group * m_group, out, 0, int(tiles), d, o, o + 1);
  });
}

template <class T>
void conv_forward_winograd(const ConvGeometry& g, const T* weight, const T* bias, const T* in, T* out, int n, T* ws) {
  const std::size_t group_transformed = g.group_transformed();
  for (int group = 0; group < g.groups; ++group)
    winograd::transform_weights(weight + group * g.out_group() * g.patch(), g.out_group(), g.in_group(),
                                ws + group * group_transformed);
  if (g.by_taps(n, g.out_tiles()))
    return convolve_by_taps(g.groups, in, g.input_maps(), g.pad, ws, g.output_maps(), n, ws + g.transformed_size(),
                            winograd::Destination<T>{out, g.out_size(), bias, g.relu});
  for_each_block(n, g.out_tiles(), g.block(), ws + g.transformed_size(), g.block_size(),
                 [&](long first, int count, T* lane_ws) {
                   T* V = lane_ws;
                   T* M = V + std::size_t{winograd::taps} * g.in_group() * g.block();
                   for (int group = 0; group < g.groups; ++group) {
                     winograd::convolve_tiles(in + group * g.in_group() * g.in_plane(), g.input_maps(), g.pad,
                                              ws + group * group_transformed, g.output_maps(), first, count, V, M,
                                              winograd::Destination<T>{out + group * g.out_group() * g.positions(),
                                                                       g.out_size(), bias + group * g.out_group(),
                                                                       g.relu});
                   }
                 });
}

template <class T>
void conv_backward_winograd(const ConvGeometry& g, const T* weight, T* weight_grad, T* bias_grad, const T* in,
                            const T* out, T* dout, T* din, int n, T* ws) {
  const int positions = g.positions();
  // The gradient before the activation, in place, and the bias gradient in sample order, in
  // one pass over the output gradient, channels on parallel threads.
#pragma omp parallel for schedule(static) if (long{n} * g.out_size() > 65536)
  for (int o = 0; o < g.out_c; ++o) {
    T sum{0};
    for (int s = 0; s < n; ++s) {
      const std::size_t at = s * g.out_size() + std::size_t(o) * positions;
      if (g.relu) activate_backward<ReLU>(out + at, dout + at, positions);
      sum += ConstArrayMap<T>(dout + at, positions).sum();
    }
    bias_grad[o] = sum;
  }

  // The weight gradient: each lane sums its blocks' products into its own transformed
  // gradient; the lanes are added in lane order (deterministic), then transformed back.
  const std::size_t transformed_size = g.transformed_size(), group_transformed = g.group_transformed();
  const int lane_count = int(lanes_of_blocks(n, g.out_tiles(), g.weight_block()));
  const std::size_t lane_stride = transformed_size + g.weight_block_size();
  for (int lane = 0; lane < lane_count; ++lane) std::fill_n(ws + lane * lane_stride, transformed_size, T{0});
  for_each_block<Deal::fixed>(n, g.out_tiles(), g.weight_block(), ws, lane_stride, [&](long first, int count, T* lane_ws) {
    T* V = lane_ws + transformed_size;
    T* D = V + std::size_t{winograd::taps} * g.in_group() * g.weight_block();
    for (int group = 0; group < g.groups; ++group) {
      winograd::accumulate_weight_gradient(in + group * g.in_group() * g.in_plane(), g.input_maps(), g.pad,
                                           dout + group * g.out_group() * positions, g.output_maps(), first, count, V,
                                           D, lane_ws + group * group_transformed);
    }
  });
  ArrayMap<T> dU(ws, Eigen::Index(transformed_size));
  for (int lane = 1; lane < lane_count; ++lane) dU += ArrayMap<T>(ws + lane * lane_stride, Eigen::Index(transformed_size));
  for (int group = 0; group < g.groups; ++group)
    winograd::kernel_gradients(ws + group * group_transformed, g.out_group(), g.in_group(),
                               weight_grad + group * g.out_group() * g.patch());
  if (din == nullptr) return;

  // The input gradient: the output gradient convolved with the rotated, transposed kernels,
  // all samples at once, or over the output gradient chunk by chunk (input_gradient_in_place).
  for (int group = 0; group < g.groups; ++group)
    winograd::transform_weights_for_input_gradient(weight + group * g.out_group() * g.patch(), g.out_group(),
                                                   g.in_group(), ws + group * group_transformed);
  const bool in_place = din == dout;
  assert(!in_place || g.input_gradient_in_place());
  const int chunk = in_place ? g.in_place_chunk(n) : n;
  const bool by_taps = g.by_taps(chunk, g.in_tiles());  // then also for a smaller last chunk
  T* blocks_ws = ws + transformed_size;
  T* scratch = blocks_ws + g.tiles_size(chunk, g.in_tiles());
  for (int first_sample = 0; first_sample < n; first_sample += chunk) {
    const int samples = std::min(chunk, n - first_sample);
    const T* dy = dout + first_sample * g.out_size();
    T* dx = in_place ? scratch : din;
    if (by_taps) {
      convolve_by_taps(g.groups, dy, g.output_maps(), 2 - g.pad, ws, g.input_maps(), samples, blocks_ws,
                       winograd::Destination<T>{dx, g.in_size()});
    } else {
      for_each_block(samples, g.in_tiles(), g.block(), blocks_ws, g.block_size(),
                     [&](long first, int count, T* lane_ws) {
        T* V = lane_ws;
        T* M = V + std::size_t{winograd::taps} * g.out_group() * g.block();
        for (int group = 0; group < g.groups; ++group) {
          winograd::convolve_tiles(dy + group * g.out_group() * positions, g.output_maps(), 2 - g.pad,
                                   ws + group * group_transformed, g.input_maps(), first, count, V, M,
                                   winograd::Destination<T>{dx + group * g.in_group() * g.in_plane(), g.in_size()});
        }
      });
    }
    if (in_place)
      for_each_sample(samples, lanes(samples), [&](int s, int) {
        std::copy_n(scratch + s * g.in_size(), g.in_size(), din + (first_sample + s) * g.in_size());
      });
  }
}

}  // namespace cpu

template <int Out, int K, int S, int P, int G, class Act, Shape In, class T>
struct LayerImpl<Conv<Out, K, S, P, G, Act>, In, T, Cpu> {
  using spec = Conv<Out, K, S, P, G, Act>;
  using backend = Cpu;
  static constexpr Shape out_shape = spec::template output<In>();
  static constexpr cpu::ConvGeometry geometry{In.c, In.h, In.w, Out, out_shape.h, out_shape.w,
                                              K,    S,    P,    G,   std::same_as<Act, ReLU>};
  static constexpr bool use_winograd = geometry.use_winograd();
  static constexpr bool input_gradient_in_place = geometry.input_gradient_in_place();  // core/layer.hpp

  std::array<Param<T, Cpu>, 2> params_ = make_params<spec, In, T, Cpu>();

  std::span<Param<T, Cpu>> params() { return params_; }

  void fill(Rng& rng, const Init& init, bool last) {
    fill_weight_and_bias(params_[0], params_[1], rng, init, last);
  }

  std::size_t workspace_bytes(int n, Pass pass) const { return cpu::conv_workspace_values(geometry, n, pass) * sizeof(T); }

  void forward(const T* in, T* out, int n, Mode, T* ws) const {
    const T *weight = params_[0].value.data(), *bias = params_[1].value.data();
    if constexpr (use_winograd) {
      cpu::conv_forward_winograd(geometry, weight, bias, in, out, n, ws);
    } else {
      cpu::conv_forward_im2col(geometry, weight, bias, in, out, n, ws);
    }
  }

  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    const T* weight = params_[0].value.data();
    T *weight_grad = params_[0].grad.data(), *bias_grad = params_[1].grad.data();
    if constexpr (use_winograd) {
      cpu::conv_backward_winograd(geometry, weight, weight_grad, bias_grad, in, out, dout, din, n, ws);
    } else {
      cpu::conv_backward_im2col(geometry, weight, weight_grad, bias_grad, in, out, dout, din, n, ws);
    }
  }
};

}  // namespace hcnn
