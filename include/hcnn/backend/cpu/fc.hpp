// hcnn/backend/cpu/fc.hpp — FC and Softmax on the CPU: one GEMM over the whole batch (for one
// sample, slices of the outputs on parallel lanes).
#pragma once

#include <array>
#include <span>

#include "../../core/layer.hpp"
#include "../../layers/fc.hpp"
#include "../../layers/softmax.hpp"
#include "activation.hpp"
#include "eigen.hpp"
#include "parallel.hpp"

namespace hcnn {
namespace cpu {

// The inner product shared by FC and Softmax: Y (n x Out) = X (n x In) W^T + b.
template <int Out, Shape In, class T>
struct InnerProduct {
  static constexpr int inputs = static_cast<int>(In.size());

  std::array<Param<T, Cpu>, 2> params_ = make_params<InnerProductSpec<Out>, In, T, Cpu>();

  void fill(Rng& rng, const Init& init, bool last) {
    fill_weight_and_bias(params_[0], params_[1], rng, init, last);
  }

  void forward(const T* in, T* out, int n) const {
    MatrixMap<T> y(out, n, Out);
    const auto x = ConstMatrixMap<T>(in, n, inputs);
    const auto w = ConstMatrixMap<T>(params_[0].value.data(), Out, inputs);
    // One sample makes the product a matrix-vector one, bound by reading the weights, which
    // Eigen runs on one thread: slices of the outputs on the lanes read them at the machine's
    // bandwidth instead (VGG-19's fc6 at batch 1: 411 MB per image). Fixed slices, so the
    // result does not depend on which lane computes which.
    const int slices = n == 1 && lanes(Out) > 1 ? std::min(Out, 8 * lanes(Out)) : 1;
    if (slices == 1) {
      y.noalias() = x * w.transpose();
    } else {
      for_each_sample(slices, lanes(slices), [&](int k, int) {
        const int first = int(long(Out) * k / slices), count = int(long(Out) * (k + 1) / slices) - first;
        y.middleCols(first, count).noalias() = x * w.middleRows(first, count).transpose();
      });
    }
    y.rowwise() += ConstVectorMap<T>(params_[1].value.data(), Out).transpose();
  }

  // dout is the gradient with respect to the pre-activation output.
  void backward(const T* in, const T* dout, T* din, int n) {
    const auto dy = ConstMatrixMap<T>(dout, n, Out);
    MatrixMap<T>(params_[0].grad.data(), Out, inputs).noalias() = dy.transpose() * ConstMatrixMap<T>(in, n, inputs);
    VectorMap<T>(params_[1].grad.data(), Out) = dy.colwise().sum().transpose();
    if (din != nullptr)
      MatrixMap<T>(din, n, inputs).noalias() = dy * ConstMatrixMap<T>(params_[0].value.data(), Out, inputs);
  }
};

}  // namespace cpu

template <int Out, class Act, Shape In, class T>
struct LayerImpl<FC<Out, Act>, In, T, Cpu> : cpu::InnerProduct<Out, In, T> {
  using spec = FC<Out, Act>;
  using backend = Cpu;
  static constexpr Shape out_shape = spec::template output<In>();

  std::span<Param<T, Cpu>> params() { return this->params_; }
  std::size_t workspace_bytes(int, Pass) const { return 0; }

  void forward(const T* in, T* out, int n, Mode, T*) const {
    cpu::InnerProduct<Out, In, T>::forward(in, out, n);
    cpu::activate<Act>(out, std::size_t(n) * Out);
  }
  void backward(const T* in, const T* out, T* dout, T* din, int n, T*) {
    cpu::activate_backward<Act>(out, dout, std::size_t(n) * Out);
    cpu::InnerProduct<Out, In, T>::backward(in, dout, din, n);
  }
};

template <int N, Shape In, class T>
struct LayerImpl<Softmax<N>, In, T, Cpu> : cpu::InnerProduct<N, In, T> {
  using spec = Softmax<N>;
  using backend = Cpu;
  static constexpr Shape out_shape = spec::template output<In>();

  std::span<Param<T, Cpu>> params() { return this->params_; }
  // The backward pass keeps the logits' gradient here.
  std::size_t workspace_bytes(int n, Pass pass) const { return pass == Pass::backward ? std::size_t(n) * N * sizeof(T) : 0; }

  void forward(const T* in, T* out, int n, Mode, T*) const {
    cpu::InnerProduct<N, In, T>::forward(in, out, n);
    cpu::MatrixMap<T> p(out, n, N);
    for (int s = 0; s < n; ++s) {
      auto row = p.row(s).array();
      row = (row - row.maxCoeff()).exp();
      row /= row.sum();
    }
  }

  // General backward through the softmax Jacobian: dz = p * (dp - <dp, p>).
  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    const auto p = cpu::ConstMatrixMap<T>(out, n, N);
    cpu::MatrixMap<T> dz(ws, n, N);
    const auto dp = cpu::ConstMatrixMap<T>(dout, n, N);
    for (int s = 0; s < n; ++s)
      dz.row(s).array() = p.row(s).array() * (dp.row(s).array() - dp.row(s).dot(p.row(s)));
    cpu::InnerProduct<N, In, T>::backward(in, ws, din, n);
  }

  // Fused softmax + mean cross-entropy: dz = (p - onehot(label)) / n. Labels are in [0, N).
  void backward_from_labels(const T* in, const T* out, const int* labels, T* din, int n, T* ws) {
    cpu::MatrixMap<T> dz(ws, n, N);
    dz = cpu::ConstMatrixMap<T>(out, n, N);
    for (int s = 0; s < n; ++s) dz(s, labels[s]) -= T{1};
    dz /= static_cast<T>(n);
    cpu::InnerProduct<N, In, T>::backward(in, ws, din, n);
  }
};

}  // namespace hcnn
