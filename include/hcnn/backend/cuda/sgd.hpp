// hcnn/backend/cuda/sgd.hpp — SgdSolver's update on device memory: one kernel per blob, on the
// thread's stream, so a training step never leaves the GPU. The hyper-parameters are read
// where the solver keeps them: a captured graph (graph.hpp) reads their values at each launch.
// BF16 blobs are updated through FP32 master copies (element.hpp).
#pragma once

#include "../../train/sgd.hpp"
#include "buffer.hpp"
#include "context.hpp"
#include "element.hpp"
#include "kernels.hpp"
#include "launch_values.hpp"

namespace hcnn {

// BF16 blobs: FP32 momentum and master weights.
template <>
struct SolverPrecision<cuda::bf16> {
  using type = float;
};

template <>
struct SgdUpdate<cuda::bf16, Cuda> {
  static void apply(const Sgd& config, Param<cuda::bf16, Cuda>& p, float* v, float* master) {
    cuda::kernels::sgd_update(p.value.data(), p.grad.data(), v, master, p.size(), cuda::launch_value(config.lr),
                              cuda::launch_value(config.momentum), cuda::launch_value(config.weight_decay), p.lr_mult,
                              p.decay_mult, cuda::context().stream());
  }
};

template <>
struct SgdUpdate<float, Cuda> {
  static void apply(const Sgd& config, Param<float, Cuda>& p, float* v) {
    cuda::kernels::sgd_update(p.value.data(), p.grad.data(), v, p.size(), cuda::launch_value(config.lr),
                              cuda::launch_value(config.momentum), cuda::launch_value(config.weight_decay), p.lr_mult,
                              p.decay_mult, cuda::context().stream());
  }
};

}  // namespace hcnn
