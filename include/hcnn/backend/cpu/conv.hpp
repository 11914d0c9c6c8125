// hcnn/backend/cpu/conv.hpp — Conv on the CPU: im2col per group + Eigen GEMM, the samples of a
// batch on parallel lanes (parallel.hpp); 3x3 stride-1 convolutions by Winograd (winograd.hpp)
// for the output and the input gradient.
#pragma once

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
  // 3x3 stride 1 (all of VGG, CaffeNet's conv3-5): Winograd F(2x2, 3x3) for the output and the
  // input gradient (a 3x3 stride-1 convolution with pad 2 - P); the weight gradient stays
  // im2col + GEMM. Wider padding than 2 would make the input gradient's padding negative.
  // Below 16 input channels per group (VGG's conv1_1 reads 3) the transforms cost more than
  // the multiplications they save: 13 GFLOP/s against im2col's 36 on conv1_1.
  static constexpr bool use_winograd = K == 3 && S == 1 && P <= 2 && in_group >= 16;

  std::array<Param<T, Cpu>, 2> params_ = make_params<spec, In, T, Cpu>();

  std::span<Param<T, Cpu>> params() { return params_; }

  void fill(Rng& rng, const Init& init, bool last) {
    (last ? init.classifier : init.weights).fill(params_[0].value.data(), params_[0].size(), params_[0].fan_in, rng);
    Filler::constant(init.bias).fill(params_[1].value.data(), params_[1].size(), 1, rng);
  }

  // im2col, per lane (cpu::lanes): the column matrix, and in backward also the lane's partial
  // weight and bias gradients after it (so forward, inference above all, needs only the columns).
  static constexpr std::size_t column_size = pointwise ? 0 : std::size_t{patch} * positions;
  static constexpr std::size_t lane_size = column_size + std::size_t{Out} * patch + Out;
  // Winograd: the transformed weights of every group, then each lane's block (winograd.hpp).
  // The weight gradient runs first and is finished before the input gradient reuses the space.
  static constexpr std::size_t transformed_size = std::size_t{cpu::winograd::taps} * Out * in_group;
  static constexpr int block = cpu::winograd::block_tiles(in_group, out_group);  // at most; the same both ways
  static constexpr std::size_t block_size = cpu::winograd::block_size(in_group, out_group);
  // Blocks for n samples: a multiple of the lanes, so that none waits for another (VGG's conv5
  // at batch 1 has 49 tiles: 32 + 17 would leave one lane idle half the time).
  static int blocks(int n, int tiles_per_sample) {
    const long total = long(n) * tiles_per_sample;
    const int lane_count = cpu::lanes(int(std::min<long>(total, 1 << 30)));
    const long needed = (total + block - 1) / block;
    return int(std::min<long>(total, (needed + lane_count - 1) / lane_count * lane_count));
  }
  static std::size_t winograd_size(int n, int tiles_per_sample) {
    return transformed_size + std::size_t(cpu::lanes(blocks(n, tiles_per_sample))) * block_size;
  }
  static constexpr int out_tiles = cpu::winograd::tiles_per_sample(out_shape.h, out_shape.w);
  static constexpr int in_tiles = cpu::winograd::tiles_per_sample(In.h, In.w);

  std::size_t workspace_bytes(int n, Pass pass) const {
    const std::size_t lanes = std::size_t(cpu::lanes(n));
    std::size_t values = 0;
    if (pass == Pass::forward) {
      values = use_winograd ? winograd_size(n, out_tiles) : lanes * column_size;
    } else {
      values = lanes * lane_size;
      if constexpr (use_winograd) values = std::max(values, winograd_size(n, in_tiles));
    }
    return values * sizeof(T);
  }

  void forward(const T* in, T* out, int n, Mode, T* ws) const {
    const T* weight = params_[0].value.data();
    if constexpr (use_winograd) {
      const T* bias = params_[1].value.data();
      for (int g = 0; g < G; ++g)
        cpu::winograd::transform_weights(weight + g * out_group * patch, out_group, in_group,
                                    ws + g * transformed_size / G);
      convolve_winograd(in, {in_group, In.h, In.w, In.size()}, P, ws, {out_group, out_shape.h, out_shape.w, out_shape.size()},
                        n, ws + transformed_size, [&](int g, std::size_t s, int o, int r, int c, T v) {
                          o += g * out_group;
                          out[s * out_shape.size() + std::size_t(o) * positions + r * out_shape.w + c] =
                              cpu::activate_one<Act>(v + bias[o]);
                        });
      return;
    }
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

  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
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
        if (use_winograd || din == nullptr) continue;
        T* dx_g = din + s * In.size() + g * in_group * in_plane;
        // The columns are no longer needed, so their gradient reuses the lane's workspace.
        T* dcol = pointwise ? dx_g : col_ws;
        cpu::MatrixMap<T>(dcol, patch, positions).noalias() =
            cpu::ConstMatrixMap<T>(weight + g * out_group * patch, out_group, patch).transpose() * dy_g;
        if constexpr (!pointwise) cpu::col2im(dcol, in_group, In.h, In.w, K, S, P, out_shape.h, out_shape.w, dx_g);
      }
    });
    if (lane_count > 1) {
      cpu::MatrixMap<T> dweight(params_[0].grad.data(), Out, patch);
      cpu::VectorMap<T> dbias(params_[1].grad.data(), Out);
      dweight = cpu::MatrixMap<T>(dweight_of(0), Out, patch);
      dbias = cpu::VectorMap<T>(dbias_of(0), Out);
      for (int lane = 1; lane < lane_count; ++lane) {  // in lane order: deterministic
        dweight += cpu::MatrixMap<T>(dweight_of(lane), Out, patch);
        dbias += cpu::VectorMap<T>(dbias_of(lane), Out);
      }
    }
    if constexpr (use_winograd) {
      if (din == nullptr) return;
      // dout now holds the gradient before the activation (the loop above turned it in place).
      for (int g = 0; g < G; ++g)
        cpu::winograd::transform_weights_for_input_gradient(weight + g * out_group * patch, out_group, in_group,
                                                       ws + g * transformed_size / G);
      convolve_winograd(dout, {out_group, out_shape.h, out_shape.w, out_shape.size()}, 2 - P, ws,
                        {in_group, In.h, In.w, In.size()}, n, ws + transformed_size,
                        [&](int g, std::size_t s, int c, int r, int col, T v) {
                          din[s * In.size() + std::size_t(g * in_group + c) * in_plane + r * In.w + col] = v;
                        });
    }
  }

 private:
  // Every group of a batch: `from` (one group's maps; the next group's follow on) convolved with
  // the transformed weights U (the groups one after another) into `to`, block by block on
  // parallel lanes; store(group, sample, channel, row, column, value) writes each output.
  template <class Store>
  static void convolve_winograd(const T* from, cpu::winograd::Maps in, int pad, const T* U, cpu::winograd::Maps to, int n,
                                T* lanes_ws, Store&& store) {
    const int tiles = cpu::winograd::tiles_per_sample(to.height, to.width);
    const long total = long(n) * tiles;
    const int count = blocks(n, tiles);
    const std::size_t group_weights = transformed_size / G;
    cpu::for_each_sample(count, cpu::lanes(count), [&](int b, int lane) {
      T* V = lanes_ws + std::size_t(lane) * block_size;
      T* M = V + std::size_t{cpu::winograd::taps} * in.channels * block;
      // Block b: tiles [total * b / count, total * (b + 1) / count), at most `block` of them.
      const long first = total * b / count;
      const int size = int(total * (b + 1) / count - first);
      for (int g = 0; g < G; ++g) {
        cpu::winograd::convolve_tiles(from + std::size_t(g) * in.channels * in.height * in.width, in, pad,
                                 U + g * group_weights, to, first, size, V, M,
                                 [&](long s, int o, int r, int c, T v) { store(g, std::size_t(s), o, r, c, v); });
      }
    });
  }

  const T* columns(const T* x, T* ws) const {
    if constexpr (pointwise) {
      return x;
    } else {
      cpu::im2col(x, in_group, In.h, In.w, K, S, P, out_shape.h, out_shape.w, ws);
      return ws;
    }
  }
};

}  // namespace hcnn
