// hcnn/backend/cpu/fc.hpp — FC and Softmax on the CPU: one GEMM over the whole batch (for one
// sample, slices of the outputs on parallel lanes). The layers pass their sizes to kernels
// compiled once per element type, as Conv does.
#pragma once

#include <algorithm>
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

// Y (n x outputs) = X (n x inputs) W^T + b, W being outputs x inputs.
template <class T>
void inner_product_forward(int outputs, int inputs, const T* weight, const T* bias, const T* in, T* out, int n) {
  // One sample makes the product a matrix-vector one, bound by reading the weights, which
  // Eigen runs on one thread: slices of the outputs on the lanes read them at the machine's
  // bandwidth instead (VGG-19's fc6 at batch 1: 411 MB per image). Fixed slices, so the
  // result does not depend on which lane computes which.
  const int slices = n == 1 && lanes(outputs) > 1 ? std::min(outputs, 8 * lanes(outputs)) : 1;
  for_each_sample(slices, lanes(slices), [&](int k, int) {
    const int first = int(long(outputs) * k / slices), count = int(long(outputs) * (k + 1) / slices) - first;
    gemm<false, true>(n, count, inputs, in, inputs, weight + long(first) * inputs, inputs, out + first, outputs);
  });
  MatrixMap<T>(out, n, outputs).rowwise() += ConstVectorMap<T>(bias, outputs).transpose();
}

// The weight and bias gradients, and the input gradient when din is not null; dout is the
// gradient with respect to the pre-activation output.
template <class T>
void inner_product_backward(int outputs, int inputs, const T* weight, T* weight_grad, T* bias_grad, const T* in,
                            const T* dout, T* din, int n) {
  gemm<true, false>(outputs, inputs, n, dout, outputs, in, inputs, weight_grad, inputs);
  VectorMap<T>(bias_grad, outputs) = ConstMatrixMap<T>(dout, n, outputs).colwise().sum().transpose();
  if (din != nullptr) gemm<false, false>(n, inputs, outputs, dout, outputs, weight, inputs, din, inputs);
}

// Each row of p (n x classes) becomes its softmax.
template <class T>
void softmax_rows(T* p, int n, int classes) {
  MatrixMap<T> rows(p, n, classes);
  for (int s = 0; s < n; ++s) {
    auto row = rows.row(s).array();
    row = (row - row.maxCoeff()).exp();
    row /= row.sum();
  }
}

// The general backward through the softmax Jacobian: dz = p * (dp - <dp, p>).
template <class T>
void softmax_backward(const T* p, const T* dp, T* dz, int n, int classes) {
  const auto probabilities = ConstMatrixMap<T>(p, n, classes);
  const auto gradient = ConstMatrixMap<T>(dp, n, classes);
  MatrixMap<T> logits(dz, n, classes);
  for (int s = 0; s < n; ++s)
    logits.row(s).array() = probabilities.row(s).array() *
                            (gradient.row(s).array() - gradient.row(s).dot(probabilities.row(s)));
}

// The fused softmax + mean cross-entropy gradient: dz = (p - onehot(label)) / n. Labels are in
// [0, classes).
template <class T>
void softmax_cross_entropy_backward(const T* p, const int* labels, T* dz, int n, int classes) {
  MatrixMap<T> logits(dz, n, classes);
  logits = ConstMatrixMap<T>(p, n, classes);
  for (int s = 0; s < n; ++s) logits(s, labels[s]) -= T{1};
  logits /= static_cast<T>(n);
}

// The inner product shared by FC and Softmax: Y (n x Out) = X (n x In) W^T + b.
template <int Out, Shape In, class T>
struct InnerProduct {
  static constexpr int inputs = static_cast<int>(In.size());

  std::array<Param<T, Cpu>, 2> params_ = make_params<InnerProductSpec<Out>, In, T, Cpu>();

  void fill(Rng& rng, const Init& init, bool last) {
    fill_weight_and_bias(params_[0], params_[1], rng, init, last);
  }

  void forward(const T* in, T* out, int n) const {
    inner_product_forward(Out, inputs, params_[0].value.data(), params_[1].value.data(), in, out, n);
  }

  // dout is the gradient with respect to the pre-activation output.
  void backward(const T* in, const T* dout, T* din, int n) {
    inner_product_backward(Out, inputs, params_[0].value.data(), params_[0].grad.data(), params_[1].grad.data(), in,
                           dout, din, n);
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
    cpu::softmax_rows(out, n, N);
  }

  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    cpu::softmax_backward(out, dout, ws, n, N);
    cpu::InnerProduct<N, In, T>::backward(in, ws, din, n);
  }

  void backward_from_labels(const T* in, const T* out, const int* labels, T* din, int n, T* ws) {
    cpu::softmax_cross_entropy_backward(out, labels, ws, n, N);
    cpu::InnerProduct<N, In, T>::backward(in, ws, din, n);
  }
};

}  // namespace hcnn
