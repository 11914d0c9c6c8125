// hcnn/backend/cpu/conv.hpp — Conv on the CPU: im2col per group + Eigen GEMM, the samples of a
// batch on parallel lanes (parallel.hpp); 3x3 stride-1 convolutions by Winograd (winograd.hpp)
// in all three products (output, weight gradient, input gradient).
#pragma once

#include <algorithm>
#include <array>
#include <span>

#include "../../core/layer.hpp"
#include "../../layers/conv.hpp"
#include "activation.hpp"
#include "eigen.hpp"
#include "im2col.hpp"
#include "parallel.hpp"
#include "winograd.hpp"

namespace hcnn {

template <int Out, int K, int S, int P, int G, class Act, Shape In, class T>
struct LayerImpl<Conv<Out, K, S, P, G, Act>, In, T, Cpu> {
  using spec = Conv<Out, K, S, P, G, Act>;
  using backend = Cpu;
  static constexpr Shape out_shape = spec::template output<In>();
  static constexpr int in_group = In.c / G;   // input channels per group
  static constexpr int out_group = Out / G;   // output channels per group
  static constexpr int patch = in_group * K * K;  // rows of the column matrix
  static constexpr int positions = out_shape.h * out_shape.w;
  static constexpr int in_plane = In.h * In.w;
  // A 1x1, stride-1, unpadded convolution reads its input as the column matrix directly.
  static constexpr bool pointwise = K == 1 && S == 1 && P == 0;
  // 3x3 stride 1 (all of VGG, CaffeNet's conv3-5): Winograd F(2x2, 3x3). The input gradient is
  // a 3x3 stride-1 convolution with pad 2 - P, so wider padding than 2 stays with im2col.
  // Below 16 input channels per group (VGG's conv1_1 reads 3) the transforms cost more than
  // the multiplications they save: 13 GFLOP/s against im2col's 36 on conv1_1.
  static constexpr bool use_winograd = K == 3 && S == 1 && P <= 2 && in_group >= 16;

  std::array<Param<T, Cpu>, 2> params_ = make_params<spec, In, T, Cpu>();

  std::span<Param<T, Cpu>> params() { return params_; }

  void fill(Rng& rng, const Init& init, bool last) {
    fill_weight_and_bias(params_[0], params_[1], rng, init, last);
  }

  // im2col, per lane (cpu::lanes): the column matrix, and in backward also the lane's partial
  // weight and bias gradients after it (so forward, inference above all, needs only the columns).
  static constexpr std::size_t column_size = pointwise ? 0 : std::size_t{patch} * positions;
  static constexpr std::size_t lane_size = column_size + std::size_t{Out} * patch + Out;

  // Winograd: the transformed weights of every group (or, for the weight gradient, each lane's
  // partial sum of them), and each lane's block of tiles (winograd.hpp).
  static constexpr std::size_t transformed_size = std::size_t{cpu::winograd::taps} * Out * in_group;
  static constexpr int block = cpu::winograd::block_tiles(in_group, out_group);  // at most; the same both ways
  static constexpr std::size_t block_size = cpu::winograd::block_size(in_group, out_group, block);
  static constexpr int weight_block = cpu::winograd::weight_block_tiles(in_group, out_group);
  static constexpr std::size_t weight_block_size = cpu::winograd::block_size(in_group, out_group, weight_block);
  static constexpr int out_tiles = cpu::winograd::tiles_per_sample(out_shape.h, out_shape.w);
  static constexpr int in_tiles = cpu::winograd::tiles_per_sample(In.h, In.w);
  // Blocks of at most `most` tiles for n samples: a multiple of the lanes, so that none waits
  // for another (VGG's conv5 at batch 1 has 49 tiles: 32 + 17 would leave one lane idle half
  // the time).
  static int blocks(int n, int tiles_per_sample, int most) {
    const long total = long(n) * tiles_per_sample;
    const int lane_count = cpu::lanes(int(std::min<long>(total, 1 << 30)));
    const long needed = (total + most - 1) / most;
    return int(std::min<long>(total, (needed + lane_count - 1) / lane_count * lane_count));
  }
  static std::size_t lanes_of_blocks(int n, int tiles_per_sample, int most) {
    return std::size_t(cpu::lanes(blocks(n, tiles_per_sample, most)));
  }

  std::size_t workspace_bytes(int n, Pass pass) const {
    std::size_t values = 0;
    if constexpr (use_winograd) {
      // Forward and the input gradient: the transformed weights, then the lanes' blocks. The
      // weight gradient, which runs first in backward: each lane's partial sum and block.
      values = transformed_size + lanes_of_blocks(n, pass == Pass::forward ? out_tiles : in_tiles, block) * block_size;
      if (pass == Pass::backward)
        values = std::max(values, lanes_of_blocks(n, out_tiles, weight_block) * (transformed_size + weight_block_size));
    } else {
      values = std::size_t(cpu::lanes(n)) * (pass == Pass::forward ? column_size : lane_size);
    }
    return values * sizeof(T);
  }

  void forward(const T* in, T* out, int n, Mode, T* ws) const {
    if constexpr (use_winograd) {
      forward_winograd(in, out, n, ws);
    } else {
      forward_im2col(in, out, n, ws);
    }
  }

  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    if constexpr (use_winograd) {
      backward_winograd(in, out, dout, din, n, ws);
    } else {
      backward_im2col(in, out, dout, din, n, ws);
    }
  }

 private:
  using Maps = cpu::winograd::Maps;
  static constexpr Maps input_maps{in_group, In.h, In.w, std::size_t(In.size())};
  static constexpr Maps output_maps{out_group, out_shape.h, out_shape.w, std::size_t(out_shape.size())};
  static constexpr std::size_t group_transformed = transformed_size / G;

  void forward_im2col(const T* in, T* out, int n, T* ws) const {
    const T* weight = params_[0].value.data();
    cpu::for_each_sample(n, cpu::lanes(n), [&](int s, int lane) {
      T* lane_ws = ws + std::size_t(lane) * column_size;
      const T* x = in + s * In.size();
      T* y = out + s * out_shape.size();
      for (int g = 0; g < G; ++g) {
        const T* col = columns(x + g * in_group * in_plane, lane_ws);
        cpu::MatrixMap<T>(y + g * out_group * positions, out_group, positions).noalias() =
            cpu::ConstMatrixMap<T>(weight + g * out_group * patch, out_group, patch) *
            cpu::ConstMatrixMap<T>(col, patch, positions);
      }
      cpu::MatrixMap<T>(y, Out, positions).colwise() += cpu::ConstVectorMap<T>(params_[1].value.data(), Out);
      cpu::activate<Act>(y, out_shape.size());
    });
  }

  void backward_im2col(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    const T* weight = params_[0].value.data();
    const int lane_count = cpu::lanes(n);
    // One lane accumulates straight into the gradients; several into their own partial sums.
    auto dweight_of = [&](int lane) {
      return lane_count == 1 ? params_[0].grad.data() : ws + std::size_t(lane) * lane_size + column_size;
    };
    auto dbias_of = [&](int lane) {
      return lane_count == 1 ? params_[1].grad.data() : ws + std::size_t(lane) * lane_size + column_size + Out * patch;
    };
    for (int lane = 0; lane < lane_count; ++lane) {
      cpu::MatrixMap<T>(dweight_of(lane), Out, patch).setZero();
      cpu::VectorMap<T>(dbias_of(lane), Out).setZero();
    }
    cpu::for_each_sample(n, lane_count, [&](int s, int lane) {
      T* col_ws = ws + std::size_t(lane) * lane_size;
      cpu::MatrixMap<T> dweight(dweight_of(lane), Out, patch);
      cpu::VectorMap<T> dbias(dbias_of(lane), Out);
      const T* x = in + s * In.size();
      T* dy = dout + s * out_shape.size();
      cpu::activate_backward<Act>(out + s * out_shape.size(), dy, out_shape.size());
      dbias += cpu::ConstMatrixMap<T>(dy, Out, positions).rowwise().sum();
      for (int g = 0; g < G; ++g) {
        const auto dy_g = cpu::ConstMatrixMap<T>(dy + g * out_group * positions, out_group, positions);
        // The columns are recomputed rather than kept from the forward pass, as Caffe does: for
        // VGG-19 at batch 32 they would take gigabytes.
        const T* col = columns(x + g * in_group * in_plane, col_ws);
        dweight.middleRows(g * out_group, out_group).noalias() +=
            dy_g * cpu::ConstMatrixMap<T>(col, patch, positions).transpose();
        if (din == nullptr) continue;
        T* dx_g = din + s * In.size() + g * in_group * in_plane;
        // The columns are no longer needed, so their gradient reuses the lane's workspace.
        T* dcol = pointwise ? dx_g : col_ws;
        cpu::MatrixMap<T>(dcol, patch, positions).noalias() =
            cpu::ConstMatrixMap<T>(weight + g * out_group * patch, out_group, patch).transpose() * dy_g;
        if constexpr (!pointwise) cpu::col2im(dcol, in_group, In.h, In.w, K, S, P, out_shape.h, out_shape.w, dx_g);
      }
    });
    if (lane_count == 1) return;
    cpu::MatrixMap<T> dweight(params_[0].grad.data(), Out, patch);
    cpu::VectorMap<T> dbias(params_[1].grad.data(), Out);
    dweight = cpu::MatrixMap<T>(dweight_of(0), Out, patch);
    dbias = cpu::VectorMap<T>(dbias_of(0), Out);
    for (int lane = 1; lane < lane_count; ++lane) {  // in lane order: deterministic
      dweight += cpu::MatrixMap<T>(dweight_of(lane), Out, patch);
      dbias += cpu::VectorMap<T>(dbias_of(lane), Out);
    }
  }

  const T* columns(const T* x, T* ws) const {
    if constexpr (pointwise) {
      return x;
    } else {
      cpu::im2col(x, in_group, In.h, In.w, K, S, P, out_shape.h, out_shape.w, ws);
      return ws;
    }
  }

  void forward_winograd(const T* in, T* out, int n, T* ws) const {
    const T* weight = params_[0].value.data();
    const T* bias = params_[1].value.data();
    for (int g = 0; g < G; ++g)
      cpu::winograd::transform_weights(weight + g * out_group * patch, out_group, in_group, ws + g * group_transformed);
    for_each_block(n, out_tiles, [&](long first, int count, T* lane_ws, int) {
      T* V = lane_ws;
      T* M = V + std::size_t{cpu::winograd::taps} * in_group * block;
      for (int g = 0; g < G; ++g) {
        cpu::winograd::convolve_tiles(in + g * in_group * in_plane, input_maps, P, ws + g * group_transformed,
                                      output_maps, first, count, V, M,
                                      cpu::winograd::Destination<T>{out + g * out_group * positions, out_shape.size(),
                                                                    bias + g * out_group, std::same_as<Act, ReLU>});
      }
    }, block, ws + transformed_size, block_size);
  }

  void backward_winograd(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    // The gradient before the activation, in place, and the bias gradient in sample order, in
    // one pass over the output gradient, channels on parallel threads.
#pragma omp parallel for schedule(static) if (long{n} * out_shape.size() > 65536)
    for (int o = 0; o < Out; ++o) {
      T sum{0};
      for (int s = 0; s < n; ++s) {
        const std::size_t at = s * out_shape.size() + std::size_t(o) * positions;
        cpu::activate_backward<Act>(out + at, dout + at, positions);
        sum += cpu::ConstArrayMap<T>(dout + at, positions).sum();
      }
      params_[1].grad[o] = sum;
    }

    // The weight gradient: each lane sums its blocks' products into its own transformed
    // gradient; the lanes are added in lane order (deterministic), then transformed back.
    const int lane_count = int(lanes_of_blocks(n, out_tiles, weight_block));
    const std::size_t lane_stride = transformed_size + weight_block_size;
    for (int lane = 0; lane < lane_count; ++lane) std::fill_n(ws + lane * lane_stride, transformed_size, T{0});
    for_each_block(n, out_tiles, [&](long first, int count, T* lane_ws, int) {
      T* V = lane_ws + transformed_size;
      T* D = V + std::size_t{cpu::winograd::taps} * in_group * weight_block;
      for (int g = 0; g < G; ++g) {
        cpu::winograd::accumulate_weight_gradient(in + g * in_group * in_plane, input_maps, P,
                                                  dout + g * out_group * positions, output_maps, first, count, V, D,
                                                  lane_ws + g * group_transformed);
      }
    }, weight_block, ws, lane_stride);
    cpu::ArrayMap<T> dU(ws, Eigen::Index(transformed_size));
    for (int lane = 1; lane < lane_count; ++lane) dU += cpu::ArrayMap<T>(ws + lane * lane_stride, Eigen::Index(transformed_size));
    for (int g = 0; g < G; ++g)
      cpu::winograd::kernel_gradients(ws + g * group_transformed, out_group, in_group,
                                      params_[0].grad.data() + g * out_group * patch);
    if (din == nullptr) return;

    // The input gradient: the output gradient convolved with the rotated, transposed kernels.
    const T* weight = params_[0].value.data();
    for (int g = 0; g < G; ++g)
      cpu::winograd::transform_weights_for_input_gradient(weight + g * out_group * patch, out_group, in_group,
                                                          ws + g * group_transformed);
    for_each_block(n, in_tiles, [&](long first, int count, T* lane_ws, int) {
      T* V = lane_ws;
      T* M = V + std::size_t{cpu::winograd::taps} * out_group * block;
      for (int g = 0; g < G; ++g) {
        cpu::winograd::convolve_tiles(dout + g * out_group * positions, output_maps, 2 - P,
                                      ws + g * group_transformed, input_maps, first, count, V, M,
                                      cpu::winograd::Destination<T>{din + g * in_group * in_plane, In.size()});
      }
    }, block, ws + transformed_size, block_size);
  }

  // Runs body(first tile, tile count, lane workspace, lane) for every block (of at most `most`
  // tiles) of the batch's tiles (n samples of tiles_per_sample), the blocks on parallel lanes;
  // lane l's workspace starts at lanes_ws + l * lane_stride.
  template <class Body>
  static void for_each_block(int n, int tiles_per_sample, Body&& body, int most, T* lanes_ws,
                             std::size_t lane_stride) {
    const long total = long(n) * tiles_per_sample;
    const int count = blocks(n, tiles_per_sample, most);
    cpu::for_each_sample(count, cpu::lanes(count), [&](int b, int lane) {
      // Block b: tiles [total * b / count, total * (b + 1) / count), at most `most` of them.
      const long first = total * b / count;
      body(first, int(total * (b + 1) / count - first), lanes_ws + lane * lane_stride, lane);
    });
  }
};

}  // namespace hcnn
