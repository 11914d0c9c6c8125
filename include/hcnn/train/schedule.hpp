// hcnn/train/schedule.hpp — learning-rate policies: Caffe's fixed, step, multistep and poly,
// and linear warm-up followed by cosine decay.
//
// A Schedule gives the factor the base learning rate is multiplied by at iteration `iter`
// (0-based), exactly as Caffe's SGDSolver::GetLearningRate computes it:
//   fixed      1
//   step       gamma ^ floor(iter / step_size)
//   multistep  gamma ^ (number of steps <= iter)
//   poly       (1 - iter / max_iter) ^ power
//   warmup_cosine  (iter + 1) / warmup during the warm-up, then
//                  0.5 (1 + cos(pi (iter - warmup) / (max_iter - warmup)))
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace hcnn {

struct Schedule {
  enum class Kind { fixed, step, multistep, poly, warmup_cosine };
  Kind kind = Kind::fixed;
  double gamma = 0.1;
  std::int64_t step_size = 1;
  std::vector<std::int64_t> steps;
  double power = 1.0;
  std::int64_t max_iter = 1;
  std::int64_t warmup = 0;

  static Schedule fixed() { return {}; }
  static Schedule step(std::int64_t step_size, double gamma = 0.1) {
    if (step_size <= 0) throw Error("Schedule::step: step_size must be positive, got " + std::to_string(step_size));
    Schedule s;
    s.kind = Kind::step;
    s.gamma = gamma;
    s.step_size = step_size;
    return s;
  }
  static Schedule multistep(std::vector<std::int64_t> steps, double gamma = 0.1) {
    if (!std::is_sorted(steps.begin(), steps.end())) throw Error("Schedule::multistep: the steps must be increasing");
    Schedule s;
    s.kind = Kind::multistep;
    s.gamma = gamma;
    s.steps = std::move(steps);
    return s;
  }
  static Schedule poly(std::int64_t max_iter, double power = 1.0) {
    if (max_iter <= 0) throw Error("Schedule::poly: max_iter must be positive, got " + std::to_string(max_iter));
    Schedule s;
    s.kind = Kind::poly;
    s.power = power;
    s.max_iter = max_iter;
    return s;
  }
  static Schedule warmup_cosine(std::int64_t warmup, std::int64_t max_iter) {
    if (warmup < 0 || max_iter <= warmup)
      throw Error("Schedule::warmup_cosine: needs 0 <= warmup < max_iter, got " + std::to_string(warmup) + " and " +
                  std::to_string(max_iter));
    Schedule s;
    s.kind = Kind::warmup_cosine;
    s.max_iter = max_iter;
    s.warmup = warmup;
    return s;
  }

  [[nodiscard]] double multiplier(std::int64_t iter) const {
    switch (kind) {
      case Kind::fixed: return 1.0;
      case Kind::step: return std::pow(gamma, double(iter / step_size));
      case Kind::multistep: {
        const auto passed = std::upper_bound(steps.begin(), steps.end(), iter) - steps.begin();
        return std::pow(gamma, double(passed));
      }
      case Kind::poly: return std::pow(std::max(0.0, 1.0 - double(iter) / double(max_iter)), power);
      case Kind::warmup_cosine: {
        if (iter < warmup) return double(iter + 1) / double(warmup);
        const double t = std::min(1.0, double(iter - warmup) / double(max_iter - warmup));
        return 0.5 * (1.0 + std::cos(std::numbers::pi * t));
      }
    }
    return 1.0;
  }
};

}  // namespace hcnn
