// hcnn/core/param.hpp — a learnable parameter blob with its gradient and Caffe's multipliers.
//
// Solvers and checkpoints see every parameter of a model as a flat list of Param references,
// whatever the layer. The learning-rate and weight-decay multipliers follow Caffe (weights 1/1,
// biases 2/0); training strategies freeze a layer by setting its lr_mult to 0.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "buffer.hpp"

namespace hcnn {

template <class T, class Backend>
struct Param {
  Param() = default;
  // dims as Caffe's blob shape: (out, in/groups, kh, kw) for convolutions, (out, in) for inner
  // products, (out) for biases; unused trailing dims are 1 and `rank` says how many count.
  Param(std::string param_name, std::array<int, 4> blob_dims, int blob_rank, float lr, float decay)
      : name(std::move(param_name)), dims(blob_dims), rank(blob_rank), lr_mult(lr), decay_mult(decay) {
    value.assign(size(), T{});
    grad.assign(size(), T{});
  }

  [[nodiscard]] std::size_t size() const {
    return static_cast<std::size_t>(dims[0]) * dims[1] * dims[2] * dims[3];
  }

  std::string name;  // "weight" or "bias"
  std::array<int, 4> dims{1, 1, 1, 1};
  int rank = 1;
  float lr_mult = 1.0f;
  float decay_mult = 1.0f;
  Buffer<T, Backend> value;
  Buffer<T, Backend> grad;
};

}  // namespace hcnn
