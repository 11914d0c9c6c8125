// hcnn/backend/cpu/batch_norm.hpp — BatchNorm + Scale on the CPU, with Caffe's moving sums.
//
// The forward pass keeps the per-channel mean and 1/sqrt(var + eps) it normalised with; the
// backward pass recomputes x_hat from the input rather than storing it per batch. Channels are
// independent, so both passes run in parallel over channels (deterministic: each channel's sums
// are taken in one fixed order).
#pragma once

#include <array>
#include <cmath>
#include <span>

#include "../../core/layer.hpp"
#include "../../layers/batch_norm.hpp"
#include "activation.hpp"
#include "eigen.hpp"

namespace hcnn {

template <class Act, float Eps, float Maf, Shape In, class T>
struct LayerImpl<BatchNorm<Act, Eps, Maf>, In, T, Cpu> {
  using spec = BatchNorm<Act, Eps, Maf>;
  using backend = Cpu;
  static constexpr Shape out_shape = In;
  static constexpr int plane = In.h * In.w;
  enum Blob { mean_sum, var_sum, factor, scale, bias };

  std::array<Param<T, Cpu>, 5> params_ = make_params<spec, In, T, Cpu>();

  std::span<Param<T, Cpu>> params() { return params_; }
  std::size_t workspace_bytes(int, Pass) const { return 0; }

  // Caffe's initial state: zero moving sums, scale 1, bias 0.
  void fill(Rng&, const Init&, bool) {
    for (auto& p : params_) p.value.fill(T{0});
    params_[scale].value.fill(T{1});
  }

  void forward(const T* in, T* out, int n, Mode mode, T*) {
    training_ = mode == Mode::train;
    mean_.ensure(In.c);
    inv_std_.ensure(In.c);
    const double m = double(n) * plane;
    const T maf = T(Maf);
    const T stored = params_[factor].value[0];
    if (!training_) {
      const T k = stored == T{0} ? T{0} : T{1} / stored;  // Caffe: an untrained layer sees zeros
      for (int c = 0; c < In.c; ++c) {
        mean_[c] = params_[mean_sum].value[c] * k;
        inv_std_[c] = T{1} / std::sqrt(params_[var_sum].value[c] * k + T(Eps));
      }
    }
#pragma omp parallel for schedule(static) if (long{n} * In.size() > 65536)
    for (int c = 0; c < In.c; ++c) {
      if (training_) {
        double sum = 0, squares = 0;
        for (int s = 0; s < n; ++s) sum += double(channel(in, s, c).sum());
        const double mean = sum / m;
        for (int s = 0; s < n; ++s) squares += double((channel(in, s, c) - T(mean)).square().sum());
        const double var = squares / m;
        mean_[c] = T(mean);
        inv_std_[c] = T(1.0 / std::sqrt(var + double(Eps)));
        const double correction = m > 1 ? m / (m - 1) : 1.0;
        params_[mean_sum].value[c] = maf * params_[mean_sum].value[c] + T(mean);
        params_[var_sum].value[c] = maf * params_[var_sum].value[c] + T(correction * var);
      }
      const T a = params_[scale].value[c] * inv_std_[c];
      const T b = params_[bias].value[c] - a * mean_[c];
      for (int s = 0; s < n; ++s) {
        channel(out, s, c) = a * channel(in, s, c) + b;
        cpu::activate<Act>(at(out, s, c), plane);  // while the plane is in cache
      }
    }
    if (training_) params_[factor].value[0] = maf * stored + T{1};
  }

  void backward(const T* in, const T* out, T* dout, T* din, int n, T*) {
    const T m = T(double(n) * plane);
#pragma omp parallel for schedule(static) if (long{n} * In.size() > 65536)
    for (int c = 0; c < In.c; ++c) {
      const T mean = mean_[c], inv_std = inv_std_[c];
      T dy_sum{0}, dy_xhat_sum{0};
      for (int s = 0; s < n; ++s) {
        cpu::activate_backward<Act>(at(out, s, c), at(dout, s, c), plane);
        const auto dy = channel(dout, s, c);
        dy_sum += dy.sum();
        dy_xhat_sum += (dy * (channel(in, s, c) - mean)).sum() * inv_std;
      }
      params_[scale].grad[c] = dy_xhat_sum;
      params_[bias].grad[c] = dy_sum;
      if (din == nullptr) continue;
      const T a = params_[scale].value[c] * inv_std;
      for (int s = 0; s < n; ++s) {
        if (training_) {
          // The batch statistics depend on x: dx = a (dy - mean(dy) - x_hat mean(dy x_hat)).
          channel(din, s, c) = a * (channel(dout, s, c) - dy_sum / m -
                                    (channel(in, s, c) - mean) * inv_std * (dy_xhat_sum / m));
        } else {
          channel(din, s, c) = a * channel(dout, s, c);
        }
      }
    }
  }

 private:
  template <class P>
  static P* at(P* p, int s, int c) { return p + s * In.size() + c * plane; }
  static auto channel(T* p, int s, int c) { return cpu::ArrayMap<T>(at(p, s, c), plane); }
  static auto channel(const T* p, int s, int c) { return cpu::ConstArrayMap<T>(at(p, s, c), plane); }

  Buffer<T, Cpu> mean_, inv_std_;  // what the last forward pass normalised with
  bool training_ = false;
};

}  // namespace hcnn
