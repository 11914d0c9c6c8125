// hcnn/backend/cpu/eigen.hpp — Eigen views over raw buffers, in Caffe's row-major layout.
//
// Every CPU layer works on NCHW buffers it does not own; these maps let it use Eigen on them
// without copying, and gemm below runs Eigen's matrix product on them.
#pragma once

#include <algorithm>
#include <type_traits>

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
// Every product of the CPU layers goes through here, and it calls Eigen's blocked GEMM and its
// OpenMP driver directly. A product expression (C.noalias() += A * B) instantiates Eigen's
// whole dispatch for it: a coefficient-wise product for tiny sizes and two matrix-vector
// kernels besides the GEMM: the three patterns compiled in 5.2 s as product expressions, in
// 3.6 s this way (g++ -O2, a file of their own, Intel family 6 model 167). This uses Eigen's
// internal API (general_matrix_matrix_product, gemm_functor, parallelize_gemm) as Eigen 3.4's
// own product does; the static_assert guards the version.
static_assert(EIGEN_VERSION_AT_LEAST(3, 4, 0) && !EIGEN_VERSION_AT_LEAST(3, 4, 90),
              "hcnn calls Eigen 3.4's internal GEMM (backend/cpu/eigen.hpp): check gemm_accumulate against this Eigen");
template <bool TransA, bool TransB, class T>
void gemm_accumulate(long m, long n, long k, const T* a, long lda, const T* b, long ldb, T* c, long ldc) {
  namespace internal = Eigen::internal;
  if (m == 0 || n == 0 || k == 0) return;
  using Product = Eigen::Map<RowMatrix<T>, 0, Eigen::OuterStride<>>;
  const auto lhs = strided_operand<TransA>(a, m, k, lda);
  const auto rhs = strided_operand<TransB>(b, k, n, ldb);
  Product product(c, m, n, Eigen::OuterStride<>(ldc));
  if constexpr (!TransA && TransB) {
    // One row times a transposed matrix (FC at batch 1) is bound by reading the matrix, which
    // Eigen's matrix-vector kernel streams once; its GEMM would pack it first.
    if (m == 1) {
      auto row = product.row(0);
      row.noalias() += lhs.row(0) * rhs;
      return;
    }
  }
  using Blocking = internal::gemm_blocking_space<Eigen::RowMajor, T, T, Eigen::Dynamic, Eigen::Dynamic, Eigen::Dynamic>;
  using Gemm = internal::general_matrix_matrix_product<long, T, TransA ? Eigen::ColMajor : Eigen::RowMajor, false, T,
                                                       TransB ? Eigen::ColMajor : Eigen::RowMajor, false, Eigen::RowMajor, 1>;
  using Functor = internal::gemm_functor<T, long, Gemm, std::remove_const_t<decltype(lhs)>,
                                         std::remove_const_t<decltype(rhs)>, Product, Blocking>;
  Blocking blocking(m, n, k, 1, true);
  // As Eigen's product: threads over the rows and columns of C unless already in a parallel
  // region (a lane of parallel.hpp), the `true` saying that C is row-major.
  internal::parallelize_gemm<true>(Functor(lhs, rhs, product, T{1}, blocking), m, n, k, true);
}

// C = op(A) op(B), as gemm_accumulate. Eigen's own product clears C before a large product
// too, so clearing it here costs nothing and only the accumulating form is compiled.
template <bool TransA, bool TransB, class T>
void gemm(long m, long n, long k, const T* a, long lda, const T* b, long ldb, T* c, long ldc) {
  if (ldc == n) {
    std::fill_n(c, m * n, T{0});  // one memset: Winograd's tap products have many short rows
  } else {
    for (long row = 0; row < m; ++row) std::fill_n(c + row * ldc, n, T{0});
  }
  gemm_accumulate<TransA, TransB>(m, n, k, a, lda, b, ldb, c, ldc);
}

}  // namespace hcnn::cpu
