// hcnn/backend/cuda/conv.hpp — Conv on the GPU: cuDNN's convolutions (groups included), the
// bias by cudnnAddTensor, the activation in place.
//
// cuDNN's algorithms are found once per batch size (and math mode) by timing them, on the
// first pass that needs them: Model asks workspace_bytes(n, pass) before every pass, which is
// where the plan is made. Plans are immutable and shared by copies of the layer.
#pragma once

#include <array>
#include <concepts>
#include <map>
#include <memory>
#include <span>
#include <utility>

#include "../../core/layer.hpp"
#include "../../layers/conv.hpp"
#include "activation.hpp"
#include "buffer.hpp"
#include "cudnn.hpp"

namespace hcnn {

template <int Out, int K, int S, int P, int G, class Act, Shape In, cuda::CudaElement T>
struct LayerImpl<Conv<Out, K, S, P, G, Act>, In, T, Cuda> {
  using spec = Conv<Out, K, S, P, G, Act>;
  using backend = Cuda;
  static constexpr Shape out_shape = spec::template output<In>();

  std::array<Param<T, Cuda>, 2> params_ = make_params<spec, In, T, Cuda>();

  std::span<Param<T, Cuda>> params() { return params_; }
  void fill(Rng& rng, const Init& init, bool last) { fill_weight_and_bias(params_[0], params_[1], rng, init, last); }

  std::size_t workspace_bytes(int n, Pass pass) const {
    const auto& p = plan(n);
    return pass == Pass::forward ? p.forward_bytes() : p.backward_bytes();
  }

  void forward(const T* in, T* out, int n, Mode, T* ws) const {
    const auto& p = plan(n);
    p.forward(in, params_[0].value.data(), out, ws);
    if constexpr (std::same_as<T, float>) p.add_bias(params_[1].value.data(), out);
    else cuda::add_bias(params_[1].value.data(), out, n, Out, plane);
    cuda::activate<Act>(out, std::size_t(n) * out_shape.size());
  }

  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    cuda::activate_backward<Act>(out, dout, std::size_t(n) * out_shape.size());
    const auto& p = plan(n);
    if constexpr (std::same_as<T, float>) p.bias_gradient(dout, params_[1].grad.data());
    else cuda::bias_gradient(dout, params_[1].grad.data(), n, Out, plane);
    p.backward(in, params_[0].value.data(), dout, params_[0].grad.data(), din, ws);
  }

 private:
  static constexpr int plane = out_shape.h * out_shape.w;

  const cuda::dnn::ConvolutionPlan& plan(int n) const {
    const bool tf32 = cuda::context().tf32();
    auto& slot = plans_[{n, tf32}];
    if (!slot)
      slot = std::make_shared<const cuda::dnn::ConvolutionPlan>(n, In.c, In.h, In.w, Out, out_shape.h, out_shape.w, K, S,
                                                                P, G, tf32, cuda::dnn::data_type<T>());
    return *slot;
  }

  mutable std::map<std::pair<int, bool>, std::shared_ptr<const cuda::dnn::ConvolutionPlan>> plans_;
};

}  // namespace hcnn
