// hcnn/backend/cpu/denormals.hpp — denormal floats flushed to zero while a CPU model computes.
//
// On x86 an arithmetic operation with a denormal (subnormal) operand or result takes a slow
// microcode path, about 100 times slower. Back-propagated gradients reach that range in deep
// networks: a zoo::SmallVD<51> training step at batch 64 went from 0.23 s to 1.1-2.0 s within
// ten steps, with im2col and with Winograd alike (docs/performance.md). Values below 1.2e-38
// do not matter to training, so a Model sets the CPU's flush-to-zero and denormals-are-zero
// modes (MXCSR) while its forward or backward pass runs, on the calling thread and on OpenMP's
// workers, and restores each thread's previous mode afterwards: the caller's own arithmetic
// keeps IEEE semantics.
#pragma once

#include "../../core/backend.hpp"

#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>
#define HCNN_HAS_MXCSR 1
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace hcnn::cpu {

#if defined(HCNN_HAS_MXCSR)
namespace detail {
inline constexpr unsigned flush_bits = 0x8040;  // FTZ (bit 15) and DAZ (bit 6)
struct ThreadMode {
  int depth = 0;       // guards active on this thread (a Combination's model runs its bases' models)
  unsigned saved = 0;  // MXCSR before the outermost one
};
inline ThreadMode& thread_mode() {
  thread_local ThreadMode mode;
  return mode;
}
inline void enter() {
  ThreadMode& m = thread_mode();
  if (m.depth++ == 0) {
    m.saved = _mm_getcsr();
    _mm_setcsr(m.saved | flush_bits);
  }
}
inline void leave() {
  ThreadMode& m = thread_mode();
  if (m.depth > 0 && --m.depth == 0) _mm_setcsr(m.saved);
}
}  // namespace detail

// While alive, denormals are flushed on this thread and on the current OpenMP team's threads.
class FlushDenormals {
 public:
  FlushDenormals() { on_every_thread(detail::enter); }
  ~FlushDenormals() { on_every_thread(detail::leave); }
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
  static void on_every_thread(void (*f)()) {
#if defined(_OPENMP)
    if (!omp_in_parallel()) {
#pragma omp parallel
      f();
      return;
    }
#endif
    f();
  }
};
#else
// Elsewhere (no MXCSR) the hardware's default stands.
class FlushDenormals {};
#endif

}  // namespace hcnn::cpu

namespace hcnn {

template <>
struct PassScope<Cpu> : cpu::FlushDenormals {};

}  // namespace hcnn
