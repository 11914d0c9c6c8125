// hcnn/backend/cpu/conv.hpp — Conv on the CPU: im2col per group + Eigen GEMM, the samples of a
// batch on parallel lanes (parallel.hpp).
#pragma once

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

  // Per lane (cpu::lanes): the column matrix, and in backward also the lane's partial weight
  // and bias gradients after it (so forward, inference above all, needs only the columns).
  static constexpr std::size_t column_size = pointwise ? 0 : std::size_t{patch} * positions;
  static constexpr std::size_t lane_size = column_size + std::size_t{Out} * patch + Out;
  std::size_t workspace_bytes(int n, Pass pass) const {
    const std::size_t lanes = std::size_t(cpu::lanes(n));
    return (pass == Pass::backward ? lanes * lane_size : lanes * column_size) * sizeof(T);
  }

  void forward(const T* in, T* out, int n, Mode, T* ws) const {
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

 private:
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
