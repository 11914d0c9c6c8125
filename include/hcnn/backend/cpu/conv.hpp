// hcnn/backend/cpu/conv.hpp — Conv on the CPU: im2col per group + Eigen GEMM, the samples of a
// batch on parallel lanes (parallel.hpp), several samples per GEMM where a layer has few output
// positions.
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

  std::array<Param<T, Cpu>, 2> params_ = make_params<spec, In, T, Cpu>();

  std::span<Param<T, Cpu>> params() { return params_; }

  void fill(Rng& rng, const Init& init, bool last) {
    (last ? init.classifier : init.weights).fill(params_[0].value.data(), params_[0].size(), params_[0].fan_in, rng);
    Filler::constant(init.bias).fill(params_[1].value.data(), params_[1].size(), 1, rng);
  }

  // Samples per GEMM. A layer with few output positions (the late layers of the small
  // networks have 4 to 64) would multiply thin matrices one sample at a time, far below the
  // machine's peak; it unfolds a block of samples side by side into one column matrix of at
  // least min_columns columns instead, and one GEMM serves the block.
  static constexpr int min_columns = 256;
  static constexpr int block = pointwise ? 1 : std::clamp((min_columns + positions - 1) / positions, 1, 64);
  static constexpr std::size_t block_columns = std::size_t{block} * positions;
  // Per lane (cpu::lanes): the column matrix of a block; with blocks of several samples, the
  // block's output (forward) or output gradient (backward), Out x block_columns; and in
  // backward the lane's partial weight and bias gradients after them. Forward, inference above
  // all, needs only the first two.
  static constexpr std::size_t column_size = pointwise ? 0 : std::size_t{patch} * block_columns;
  static constexpr std::size_t staging_size = block > 1 ? std::size_t{Out} * block_columns : 0;
  static constexpr std::size_t forward_lane = column_size + staging_size;
  static constexpr std::size_t backward_lane = forward_lane + std::size_t{Out} * patch + Out;
  std::size_t workspace_bytes(int n, Pass pass) const {
    return std::size_t(cpu::lanes(n)) * (pass == Pass::backward ? backward_lane : forward_lane) * sizeof(T);
  }

  void forward(const T* in, T* out, int n, Mode, T* ws) const {
    const T* weight = params_[0].value.data();
    cpu::for_each_block(n, cpu::lanes(n), block, [&](int first, int count, int lane) {
      T* cols = ws + std::size_t(lane) * forward_lane;
      const long columns = long(count) * positions;
      // One sample writes its output directly; a block goes through the staging matrix.
      T* result = block > 1 ? cols + column_size : out + first * out_shape.size();
      for (int g = 0; g < G; ++g) {
        const T* col = unfold(in, first, count, g, cols);
        cpu::MatrixMap<T>(result + g * out_group * columns, out_group, columns).noalias() =
            cpu::ConstMatrixMap<T>(weight + g * out_group * patch, out_group, patch) *
            cpu::ConstMatrixMap<T>(col, patch, columns);
      }
      for (int j = 0; j < count; ++j) {
        T* y = out + (first + j) * out_shape.size();
        if constexpr (block > 1)
          for (int o = 0; o < Out; ++o)
            std::copy_n(result + o * columns + j * positions, positions, y + o * positions);
        cpu::MatrixMap<T>(y, Out, positions).colwise() += cpu::ConstVectorMap<T>(params_[1].value.data(), Out);
        cpu::activate<Act>(y, out_shape.size());
      }
    });
  }

  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    const T* weight = params_[0].value.data();
    const int lane_count = cpu::lanes(n);
    // One lane accumulates straight into the gradients; several into their own partial sums.
    auto dweight_of = [&](int lane) {
      return lane_count == 1 ? params_[0].grad.data() : ws + std::size_t(lane) * backward_lane + forward_lane;
    };
    auto dbias_of = [&](int lane) {
      return lane_count == 1 ? params_[1].grad.data() : ws + std::size_t(lane) * backward_lane + forward_lane + Out * patch;
    };
    for (int lane = 0; lane < lane_count; ++lane) {
      cpu::MatrixMap<T>(dweight_of(lane), Out, patch).setZero();
      cpu::VectorMap<T>(dbias_of(lane), Out).setZero();
    }
    cpu::for_each_block(n, lane_count, block, [&](int first, int count, int lane) {
      T* cols = ws + std::size_t(lane) * backward_lane;
      const long columns = long(count) * positions;
      cpu::MatrixMap<T> dweight(dweight_of(lane), Out, patch);
      cpu::VectorMap<T> dbias(dbias_of(lane), Out);
      for (int j = 0; j < count; ++j)
        cpu::activate_backward<Act>(out + (first + j) * out_shape.size(), dout + (first + j) * out_shape.size(),
                                    out_shape.size());
      // The block's output gradient, Out x columns: the samples' own, or gathered side by side.
      T* dy = dout + first * out_shape.size();
      if constexpr (block > 1) {
        T* staged = cols + column_size;
        for (int j = 0; j < count; ++j)
          for (int o = 0; o < Out; ++o)
            std::copy_n(dout + (first + j) * out_shape.size() + o * positions, positions, staged + o * columns + j * positions);
        dy = staged;
      }
      dbias += cpu::ConstMatrixMap<T>(dy, Out, columns).rowwise().sum();
      for (int g = 0; g < G; ++g) {
        const auto dy_g = cpu::ConstMatrixMap<T>(dy + g * out_group * columns, out_group, columns);
        // The columns are recomputed rather than kept from the forward pass, as Caffe does: for
        // VGG-19 at batch 32 they would take gigabytes.
        const T* col = unfold(in, first, count, g, cols);
        dweight.middleRows(g * out_group, out_group).noalias() +=
            dy_g * cpu::ConstMatrixMap<T>(col, patch, columns).transpose();
        if (din == nullptr) continue;
        T* dx = din + first * In.size() + g * in_group * in_plane;
        // The columns are no longer needed, so their gradient reuses the lane's column matrix.
        T* dcol = pointwise ? dx : cols;
        cpu::MatrixMap<T>(dcol, patch, columns).noalias() =
            cpu::ConstMatrixMap<T>(weight + g * out_group * patch, out_group, patch).transpose() * dy_g;
        if constexpr (!pointwise)
          for (int j = 0; j < count; ++j)
            cpu::col2im(dcol + j * positions, in_group, In.h, In.w, K, S, P, out_shape.h, out_shape.w,
                        dx + j * In.size(), columns);
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

 private:
  // The column matrix of group g of samples [first, first + count), patch x (count x positions),
  // each sample's columns side by side; a pointwise convolution's single sample is its input.
  const T* unfold(const T* in, int first, int count, int g, T* cols) const {
    const T* x = in + first * In.size() + g * in_group * in_plane;
    if constexpr (pointwise) {
      return x;
    } else {
      for (int j = 0; j < count; ++j)
        cpu::im2col(x + j * In.size(), in_group, In.h, In.w, K, S, P, out_shape.h, out_shape.w, cols + j * positions,
                    long(count) * positions);
      return cols;
    }
  }
};

}  // namespace hcnn
