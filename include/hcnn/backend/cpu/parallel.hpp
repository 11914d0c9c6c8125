// hcnn/backend/cpu/parallel.hpp — how many samples of a batch run side by side.
//
// Eigen's GEMM scales poorly from one thread to two on the thin matrices of per-sample
// convolutions (a 16 x 4096 output, or a few hundred rows at most), so a convolution runs its
// samples on separate threads ("lanes"), each with a single-threaded GEMM and its own slice of
// the workspace; a batch of one keeps Eigen's own threading. Samples are dealt to lanes
// statically and per-lane partial sums are added in lane order, so results are deterministic
// for a fixed thread count.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <algorithm>

namespace hcnn::cpu {

// Lanes for a batch of n: min(n, OpenMP's thread count), at least 1.
inline int lanes(int n) {
#if defined(_OPENMP)
  return std::max(1, std::min(n, omp_get_max_threads()));
#else
  (void)n;
  return 1;
#endif
}

inline int lane_id() {
#if defined(_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// How samples (or blocks) are dealt to lanes. `fixed`: lane l always gets the same ones
// (statically), which a body that adds into lane l's partial sum needs for deterministic
// results. `on_demand`: each lane takes the next one when it is free, for bodies whose result
// does not depend on the lane; on these shared machines one vCPU often runs 15-50 % slower than
// the other for seconds at a time, and a static deal leaves the faster one waiting (SmallVD's
// training step: 12 % of the samples spent in OpenMP's barrier, 3 % on demand).
enum class Deal { fixed, on_demand };

// Runs body(s, lane) for s in [0, n) on `lane_count` lanes.
template <Deal deal = Deal::on_demand, class Body>
void for_each_sample(int n, int lane_count, Body&& body) {
  if (lane_count <= 1) {
    for (int s = 0; s < n; ++s) body(s, 0);
    return;
  }
  if constexpr (deal == Deal::fixed) {
#pragma omp parallel for schedule(static) num_threads(lane_count)
    for (int s = 0; s < n; ++s) body(s, lane_id());
  } else {
#pragma omp parallel for schedule(dynamic) num_threads(lane_count)
    for (int s = 0; s < n; ++s) body(s, lane_id());
  }
}

}  // namespace hcnn::cpu
