// hcnn/core/filler.hpp — Caffe's weight fillers, seeded and deterministic.
//
// gaussian: N(0, std). xavier: U(-a, a) with a = sqrt(3 / fan_in). msra: N(0, sqrt(2 / fan_in)).
// fan_in is Caffe's default, count / num = (in / groups) * kh * kw for a convolution, `in` for
// an inner product. Biases are constant.
#pragma once

#include <cmath>

#include "random.hpp"

namespace hcnn {

struct Filler {
  enum class Kind { gaussian, xavier, msra, constant };
  Kind kind = Kind::msra;
  float value = 0.0f;  // std for gaussian, the constant for constant; unused otherwise

  static constexpr Filler gaussian(float std) { return {Kind::gaussian, std}; }
  static constexpr Filler xavier() { return {Kind::xavier, 0.0f}; }
  static constexpr Filler msra() { return {Kind::msra, 0.0f}; }
  static constexpr Filler constant(float v) { return {Kind::constant, v}; }

  template <class T>
  void fill(T* data, std::size_t count, std::int64_t fan_in, Rng& rng) const {
    const double fan = static_cast<double>(fan_in > 0 ? fan_in : 1);
    switch (kind) {
      case Kind::gaussian:
        for (std::size_t i = 0; i < count; ++i) data[i] = static_cast<T>(rng.normal(0.0, value));
        break;
      case Kind::xavier: {
        const double a = std::sqrt(3.0 / fan);
        for (std::size_t i = 0; i < count; ++i) data[i] = static_cast<T>(rng.uniform(-a, a));
        break;
      }
      case Kind::msra: {
        const double std = std::sqrt(2.0 / fan);
        for (std::size_t i = 0; i < count; ++i) data[i] = static_cast<T>(rng.normal(0.0, std));
        break;
      }
      case Kind::constant:
        for (std::size_t i = 0; i < count; ++i) data[i] = static_cast<T>(value);
        break;
    }
  }
};

// How a model's weight layers are initialised. The classifier (the last weight layer) gets
// its own filler: a small gaussian keeps the initial softmax near uniform, as Caffe's nets do.
struct Init {
  Filler weights = Filler::msra();
  Filler classifier = Filler::gaussian(0.01f);
  float bias = 0.0f;
};

}  // namespace hcnn
