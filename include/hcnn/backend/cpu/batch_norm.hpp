// hcnn/backend/cpu/batch_norm.hpp — BatchNorm + Scale on the CPU, with Caffe's moving sums.
//
// The forward pass keeps the per-channel mean and 1/sqrt(var + eps) it normalised with; the
// backward pass recomputes x_hat from the input rather than storing it per batch. Channels are
// independent, so both passes run in parallel over channels (deterministic: each channel's sums
// are taken in one fixed order). The layer binds its shape and constants to a BatchNormGeometry
// and calls kernels compiled once per element type and activation, as Conv does.
#pragma once

#include <array>
#include <cmath>
#include <span>

#include "../../core/layer.hpp"
#include "../../layers/batch_norm.hpp"
#include "activation.hpp"
#include "eigen.hpp"

namespace hcnn {

namespace cpu {

// A BatchNorm layer's shape and constants as runtime values.
struct BatchNormGeometry {
  int channels, plane;  // per sample: `channels` maps of `plane` values
  float eps, maf;       // Caffe's eps and moving_average_fraction
  long sample() const { return long{channels} * plane; }

  // Channel c of sample s of an N,C,H,W buffer.
  template <class T>
  ArrayMap<T> channel(T* p, int s, int c) const {
    return ArrayMap<T>(p + s * sample() + long{c} * plane, plane);
  }
  template <class T>
  ConstArrayMap<T> channel(const T* p, int s, int c) const {
    return ConstArrayMap<T>(p + s * sample() + long{c} * plane, plane);
  }
};

// Where the layer's blobs are, in Caffe's order (BatchNorm's three, then Scale's two).
struct BatchNormBlob {
  static constexpr std::size_t mean_sum = 0, var_sum = 1, factor = 2, scale = 3, bias = 4;
};

// Normalises n samples with the batch's statistics (training, which also updates the moving
// sums) or the moving ones, keeping per channel the mean and 1/sqrt(var + eps) it used.
template <class Act, class T>
void batch_norm_forward(const BatchNormGeometry& g, std::span<Param<T, Cpu>, 5> params, bool training, T* mean,
                        T* inv_std, const T* in, T* out, int n) {
  const double m = double(n) * g.plane;
  const T maf = T(g.maf);
  const T stored = params[BatchNormBlob::factor].value[0];
  if (!training) {
    const T k = stored == T{0} ? T{0} : T{1} / stored;  // Caffe: an untrained layer sees zeros
    for (int c = 0; c < g.channels; ++c) {
      mean[c] = params[BatchNormBlob::mean_sum].value[c] * k;
      inv_std[c] = T{1} / std::sqrt(params[BatchNormBlob::var_sum].value[c] * k + T(g.eps));
    }
  }
#pragma omp parallel for schedule(static) if (long{n} * g.sample() > 65536)
  for (int c = 0; c < g.channels; ++c) {
    if (training) {
      double sum = 0, squares = 0;
      for (int s = 0; s < n; ++s) sum += double(g.channel(in, s, c).sum());
      const double batch_mean = sum / m;
      for (int s = 0; s < n; ++s) squares += double((g.channel(in, s, c) - T(batch_mean)).square().sum());
      const double var = squares / m;
      mean[c] = T(batch_mean);
      inv_std[c] = T(1.0 / std::sqrt(var + double(g.eps)));
      const double correction = m > 1 ? m / (m - 1) : 1.0;
      params[BatchNormBlob::mean_sum].value[c] = maf * params[BatchNormBlob::mean_sum].value[c] + T(batch_mean);
      params[BatchNormBlob::var_sum].value[c] = maf * params[BatchNormBlob::var_sum].value[c] + T(correction * var);
    }
    const T a = params[BatchNormBlob::scale].value[c] * inv_std[c];
    const T b = params[BatchNormBlob::bias].value[c] - a * mean[c];
    for (int s = 0; s < n; ++s) {
      auto y = g.channel(out, s, c);
      y = a * g.channel(in, s, c) + b;
      activate<Act>(y.data(), g.plane);  // while the plane is in cache
    }
  }
  if (training) params[BatchNormBlob::factor].value[0] = maf * stored + T{1};
}

// The scale and bias gradients, and the input gradient (when din is not null) through the
// statistics the forward pass used (the batch's when training).
template <class Act, class T>
void batch_norm_backward(const BatchNormGeometry& g, std::span<Param<T, Cpu>, 5> params, bool training,
                         const T* mean, const T* inv_std, const T* in, const T* out, T* dout, T* din, int n) {
  const T m = T(double(n) * g.plane);
#pragma omp parallel for schedule(static) if (long{n} * g.sample() > 65536)
  for (int c = 0; c < g.channels; ++c) {
    const T mean_c = mean[c], inv_std_c = inv_std[c];
    T dy_sum{0}, dy_xhat_sum{0};
    for (int s = 0; s < n; ++s) {
      auto dy = g.channel(dout, s, c);
      activate_backward<Act>(g.channel(out, s, c).data(), dy.data(), g.plane);
      dy_sum += dy.sum();
      dy_xhat_sum += (dy * (g.channel(in, s, c) - mean_c)).sum() * inv_std_c;
    }
    params[BatchNormBlob::scale].grad[c] = dy_xhat_sum;
    params[BatchNormBlob::bias].grad[c] = dy_sum;
    if (din == nullptr) continue;
    const T a = params[BatchNormBlob::scale].value[c] * inv_std_c;
    for (int s = 0; s < n; ++s) {
      if (training) {
        // The batch statistics depend on x: dx = a (dy - mean(dy) - x_hat mean(dy x_hat)).
        g.channel(din, s, c) = a * (g.channel(dout, s, c) - dy_sum / m -
                                        (g.channel(in, s, c) - mean_c) * inv_std_c * (dy_xhat_sum / m));
      } else {
        g.channel(din, s, c) = a * g.channel(dout, s, c);
      }
    }
  }
}

}  // namespace cpu

template <class Act, float Eps, float Maf, Shape In, class T>
struct LayerImpl<BatchNorm<Act, Eps, Maf>, In, T, Cpu> {
  using spec = BatchNorm<Act, Eps, Maf>;
  using backend = Cpu;
  static constexpr Shape out_shape = In;

  std::array<Param<T, Cpu>, 5> params_ = make_params<spec, In, T, Cpu>();

  std::span<Param<T, Cpu>> params() { return params_; }
  std::size_t workspace_bytes(int, Pass) const { return 0; }

  // Caffe's initial state: zero moving sums, scale 1, bias 0.
  void fill(Rng&, const Init&, bool) {
    for (auto& p : params_) p.value.fill(T{0});
    params_[cpu::BatchNormBlob::scale].value.fill(T{1});
  }

  void forward(const T* in, T* out, int n, Mode mode, T*) {
    training_ = mode == Mode::train;
    mean_.ensure(In.c);
    inv_std_.ensure(In.c);
    cpu::batch_norm_forward<Act>(geometry, std::span(params_), training_, mean_.data(), inv_std_.data(), in, out, n);
  }

  void backward(const T* in, const T* out, T* dout, T* din, int n, T*) {
    cpu::batch_norm_backward<Act>(geometry, std::span(params_), training_, mean_.data(), inv_std_.data(), in, out, dout,
                                  din, n);
  }

 private:
  static constexpr cpu::BatchNormGeometry geometry{In.c, In.h * In.w, Eps, Maf};

  Buffer<T, Cpu> mean_, inv_std_;  // what the last forward pass normalised with
  bool training_ = false;
};

}  // namespace hcnn
