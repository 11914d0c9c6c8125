// hcnn/backend/cuda/sgd.hpp — SgdSolver's update on device memory: one kernel per blob, on the
// thread's stream, so a training step never leaves the GPU.
#pragma once

#include <cstddef>

#include "../../train/sgd.hpp"
#include "context.hpp"
#include "kernels.hpp"

namespace hcnn {

template <>
struct SgdUpdate<float, Cuda> {
  static void apply(float* w, const float* g, float* v, std::size_t n, float momentum, float rate, float decay) {
    cuda::kernels::sgd_update(w, g, v, n, momentum, rate, decay, cuda::context().stream());
  }
};

}  // namespace hcnn
