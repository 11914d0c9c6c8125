// hcnn/backend/cuda/sgd.hpp — SgdSolver's update on device memory: one kernel per blob, on the
// thread's stream, so a training step never leaves the GPU. The hyper-parameters are read
// where the solver keeps them: a captured graph (graph.hpp) reads their values at each launch.
#pragma once

#include "../../train/sgd.hpp"
#include "buffer.hpp"
#include "context.hpp"
#include "kernels.hpp"
#include "launch_values.hpp"

namespace hcnn {

template <>
struct SgdUpdate<float, Cuda> {
  static void apply(const Sgd& config, Param<float, Cuda>& p, float* v) {
    cuda::kernels::sgd_update(p.value.data(), p.grad.data(), v, p.size(), cuda::launch_value(config.lr),
                              cuda::launch_value(config.momentum), cuda::launch_value(config.weight_decay), p.lr_mult,
                              p.decay_mult, cuda::context().stream());
  }
};

}  // namespace hcnn
