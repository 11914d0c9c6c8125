// hcnn/backend/cpu/eigen.hpp — Eigen views over raw buffers, in Caffe's row-major layout.
//
// Every CPU layer works on NCHW buffers it does not own; these maps let it use Eigen on them
// without copying, and gemm below runs Eigen's matrix product on them.
#pragma once

#include <algorithm>

#include <Eigen/Core>

namespace hcnn::cpu {

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatrixMap = Eigen::Map<RowMatrix<T>>;
template <class T>
using ConstMatrixMap = Eigen::Map<const RowMatrix<T>>;
template <class T>
using VectorMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
template <class T>
using ConstVectorMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;
template <class T>
using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// A row-major matrix with a row stride, read as itself or (Trans) as its transpose: the same
// memory read column-major, so no Transpose<> expression is formed.
template <bool Trans, class T>
auto strided_operand(const T* data, long rows, long cols, long stride) {
  constexpr int order = Trans ? Eigen::ColMajor : Eigen::RowMajor;
  using Operand = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, order>, 0, Eigen::OuterStride<>>;
  return Operand(data, rows, cols, Eigen::OuterStride<>(stride));
}

// C (m x n, row stride ldc) += op(A) op(B), with op(A) m x k and op(B) k x n; A is stored
// row-major with row stride lda as m x k, or as k x m when TransA (B likewise).
//
// Every product of the CPU layers goes through here. Each distinct Eigen product expression
// instantiates Eigen's whole dispatch (a coefficient-wise product for tiny sizes, two
// matrix-vector kernels, the blocked GEMM and its OpenMP driver); with one expression per
// transpose pattern instead of one per call site, a translation unit that trains the
// experiment's combination compiles about a fifth faster (docs/performance.md).
template <bool TransA, bool TransB, class T>
void gemm_accumulate(long m, long n, long k, const T* a, long lda, const T* b, long ldb, T* c, long ldc) {
  Eigen::Map<RowMatrix<T>, 0, Eigen::OuterStride<>> product(c, m, n, Eigen::OuterStride<>(ldc));
  product.noalias() += strided_operand<TransA>(a, m, k, lda) * strided_operand<TransB>(b, k, n, ldb);
}

// C = op(A) op(B), as gemm_accumulate. Eigen clears C before a large product anyway, so
// clearing it here first costs nothing and keeps one expression per pattern.
template <bool TransA, bool TransB, class T>
void gemm(long m, long n, long k, const T* a, long lda, const T* b, long ldb, T* c, long ldc) {
  for (long row = 0; row < m; ++row) std::fill_n(c + row * ldc, n, T{0});
  gemm_accumulate<TransA, TransB>(m, n, k, a, lda, b, ldb, c, ldc);
}

}  // namespace hcnn::cpu
