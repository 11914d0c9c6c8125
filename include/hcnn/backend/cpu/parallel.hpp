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

// Runs body(first, count, lane) over the samples [0, n): lane L takes the contiguous range
// [n L / lanes, n (L + 1) / lanes) and runs it in order, in blocks of at most `block` samples.
// Which lane runs which samples depends only on n and lane_count, never on timing.
template <class Body>
void for_each_block(int n, int lane_count, int block, Body&& body) {
  auto run_lane = [&](int lane) {
    const int begin = int(long(n) * lane / lane_count), end = int(long(n) * (lane + 1) / lane_count);
    for (int first = begin; first < end; first += block) body(first, std::min(block, end - first), lane);
  };
  if (lane_count <= 1) {
    run_lane(0);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(lane_count)
  for (int lane = 0; lane < lane_count; ++lane) run_lane(lane);
}

}  // namespace hcnn::cpu
