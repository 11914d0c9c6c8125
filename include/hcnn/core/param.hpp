// hcnn/core/param.hpp — a parameter blob with its gradient and Caffe's multipliers.
//
// Solvers and checkpoints see every blob of a model as a flat list of Param references,
// whatever the layer. The learning-rate and weight-decay multipliers follow Caffe (weights 1/1,
// biases 2/0). A blob that is not `learnable` is layer state that training updates by other
// means (BatchNorm's moving statistics, Caffe's lr_mult 0 blobs): it has no gradient, solvers
// leave it alone, checkpoints and Caffe import carry it like any blob. A `frozen` blob is
// learnable but excluded from training by the current strategy (Model::freeze_below sets it).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "buffer.hpp"

namespace hcnn {

// How a layer spec declares one of its blobs; backends allocate Params from it, so every
// backend, checkpoints and Caffe import agree on names, shapes and multipliers.
struct BlobSpec {
  std::string_view name;      // "weight", "bias", "mean", ...
  std::array<int, 4> dims{1, 1, 1, 1};  // Caffe's blob shape; unused trailing dims are 1
  int rank = 1;
  float lr_mult = 1.0f;
  float decay_mult = 1.0f;
  bool learnable = true;
  std::int64_t fan_in = 1;    // for the weight fillers (Caffe's count / num)
};

template <class T, class Backend>
struct Param {
  Param() = default;
  explicit Param(const BlobSpec& spec)
      : name(spec.name), dims(spec.dims), rank(spec.rank), lr_mult(spec.lr_mult), decay_mult(spec.decay_mult),
        learnable(spec.learnable), fan_in(spec.fan_in) {
    value.assign(size(), T{});
    if (learnable) grad.assign(size(), T{});
  }

  [[nodiscard]] std::size_t size() const {
    return static_cast<std::size_t>(dims[0]) * dims[1] * dims[2] * dims[3];
  }
  // Whether a solver step changes this blob now.
  [[nodiscard]] bool trained() const { return learnable && !frozen && lr_mult != 0.0f; }

  std::string name;
  std::array<int, 4> dims{1, 1, 1, 1};
  int rank = 1;
  float lr_mult = 1.0f;
  float decay_mult = 1.0f;
  bool learnable = true;
  bool frozen = false;
  std::int64_t fan_in = 1;
  Buffer<T, Backend> value;
  Buffer<T, Backend> grad;  // empty when not learnable
};

// A parameter with the name of the layer that holds it ("conv1", "weight"): what a model's
// parameters() lists for solvers, checkpoints and Caffe I/O.
template <class T, class Backend>
struct NamedParam {
  std::string layer;
  Param<T, Backend>* param;
};

// Allocates params[i] as specs[i] declares, for every i.
template <class T, class Backend>
void allocate_params(std::span<const BlobSpec> specs, std::span<Param<T, Backend>> params) {
  for (std::size_t i = 0; i < specs.size(); ++i) params[i] = Param<T, Backend>(specs[i]);
}

// The Params a spec declares for input shape In (Spec::blobs<In>() returns BlobSpecs). Each
// layer of a program instantiates this; the allocation is compiled once per element type.
template <class Spec, auto In, class T, class Backend>
auto make_params() {
  static constexpr auto specs = Spec::template blobs<In>();
  std::array<Param<T, Backend>, specs.size()> params;
  allocate_params<T, Backend>(specs, params);
  return params;
}

}  // namespace hcnn
