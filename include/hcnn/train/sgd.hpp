// hcnn/train/sgd.hpp — stochastic gradient descent with momentum and weight decay, as Caffe's.
//
// Per parameter blob with multipliers (lr_mult, decay_mult):
//   v <- momentum * v + lr * lr_mult * (grad + weight_decay * decay_mult * w);   w <- w - v
// A blob that is frozen (Model::freeze_below), not learnable (layer state such as BatchNorm's
// moving statistics) or has lr_mult 0 is neither updated nor decayed. The momentum history is
// solver state that a checkpoint saves, so training can resume exactly; a solver belongs to one
// model, and stepping it on another architecture is an error, not a read past its buffers.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "../core/backend.hpp"
#include "../core/buffer.hpp"
#include "../core/error.hpp"
#include "../core/param.hpp"

namespace hcnn {

// Hyper-parameters; an aggregate, so `Sgd{.lr = 1e-3f, .momentum = 0.9f}` reads as it should.
struct Sgd {
  float lr = 0.01f;
  float momentum = 0.9f;
  float weight_decay = 5e-4f;
};

// One blob's update, v <- momentum * v + rate * (g + decay * w); w <- w - v with
// rate = lr * lr_mult and decay = weight_decay * decay_mult, on the memory of a backend: here
// for the CPU, in backend/cuda/ for the GPU (which reads `config` by reference, so that a
// captured graph sees the hyper-parameters of each launch).
template <class T, class Backend>
struct SgdUpdate;

template <class T>
struct SgdUpdate<T, Cpu> {
  static void apply(const Sgd& config, Param<T, Cpu>& p, T* v) {
    const T rate = T(config.lr * p.lr_mult);
    const T decay = T(config.weight_decay * p.decay_mult);
    const T momentum = T(config.momentum);
    T* w = p.value.data();
    const T* g = p.grad.data();
    const std::size_t n = p.size();
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (std::size_t j = 0; j < n; ++j) {
      v[j] = momentum * v[j] + rate * (g[j] + decay * w[j]);
      w[j] -= v[j];
    }
  }
};

// What a solver accumulates in for blobs of element type T: T itself, or float for a storage
// type too narrow to take small updates (backend/cuda/sgd.hpp: bf16), whose solver then also
// keeps an FP32 master copy of every blob it trains.
template <class T>
struct SolverPrecision {
  using type = T;
};

template <class T = float, class Backend = Cpu>
class SgdSolver {
 public:
  using State = typename SolverPrecision<T>::type;
  static constexpr bool keeps_master = !std::same_as<State, T>;

  explicit SgdSolver(Sgd config = {}) : config_(config) {}

  // Applies one update to `params` (a model's parameters(), always in the same order).
  void step(std::span<const NamedParam<T, Backend>> params) {
    if (history_.empty()) {
      for (const auto& p : params) history_.emplace_back(p.param->size());
    }
    check_fits(params);
    if constexpr (keeps_master) {
      // Zero-filled: the update takes a master afresh from its weights (kernels.hpp).
      if (master_.size() != params.size())
        for (const auto& p : params) master_.emplace_back(p.param->size());
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      Param<T, Backend>& p = *params[i].param;
      if (!p.trained()) continue;
      if constexpr (keeps_master) SgdUpdate<T, Backend>::apply(config_, p, history_[i].data(), master_[i].data());
      else SgdUpdate<T, Backend>::apply(config_, p, history_[i].data());
    }
  }

  // Throws unless the momentum history (if any) has one blob of the right size per parameter:
  // a solver belongs to the model it was first stepped on.
  void check_fits(std::span<const NamedParam<T, Backend>> params) const {
    if (history_.empty()) return;
    if (history_.size() != params.size())
      throw Error("SgdSolver: the solver holds " + std::to_string(history_.size()) + " momentum blobs but was given " +
                  std::to_string(params.size()) + " parameters: it was made for another model");
    for (std::size_t i = 0; i < params.size(); ++i)
      if (history_[i].size() != params[i].param->size())
        throw Error("SgdSolver: momentum blob " + std::to_string(i) + " holds " + std::to_string(history_[i].size()) +
                    " values but parameter " + params[i].layer + "." + params[i].param->name + " has " +
                    std::to_string(params[i].param->size()) + ": this solver was made for another model");
  }

  [[nodiscard]] Sgd& config() { return config_; }
  [[nodiscard]] const Sgd& config() const { return config_; }
  [[nodiscard]] std::vector<Buffer<State, Backend>>& history() { return history_; }
  [[nodiscard]] const std::vector<Buffer<State, Backend>>& history() const { return history_; }
  // keeps_master: the FP32 master copy of each blob (empty before the first step); checkpoints
  // save it as the blob's values.
  [[nodiscard]] std::vector<Buffer<State, Backend>>& master() { return master_; }
  [[nodiscard]] const std::vector<Buffer<State, Backend>>& master() const { return master_; }

 private:
  Sgd config_;
  std::vector<Buffer<State, Backend>> history_;
  std::vector<Buffer<State, Backend>> master_;  // keeps_master only
};

}  // namespace hcnn
