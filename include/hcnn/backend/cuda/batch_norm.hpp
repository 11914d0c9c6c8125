// hcnn/backend/cuda/batch_norm.hpp — BatchNorm + Scale on the GPU, with Caffe's moving sums.
//
// Training normalises by cuDNN's spatial batch norm, asked for the batch's own mean and
// unbiased variance (its running values with an averaging factor of 1), which a kernel then
// folds into Caffe's sums (sum <- maf * sum + value, factor <- maf * factor + 1). Inference
// and frozen layers normalise with sum / factor. The backward pass is cuDNN's through the batch
// statistics, or hcnn's kernel when the statistics were fixed (kernels.hpp).
#pragma once

#include <array>
#include <cstddef>
#include <span>

#include "../../core/layer.hpp"
#include "../../layers/batch_norm.hpp"
#include "activation.hpp"
#include "buffer.hpp"
#include "cudnn.hpp"
#include "element.hpp"
#include "kernels.hpp"

namespace hcnn {
namespace cuda {

// BatchNorm's blobs, in the spec's order: Caffe's moving sums and factor, Scale's scale and bias.
namespace batch_norm_blob {
enum Index { mean_sum, var_sum, factor, scale, bias };
}  // namespace batch_norm_blob
using BatchNormBlob = batch_norm_blob::Index;

// The blobs of either element type, with Caffe's initial state: zero moving sums, scale 1, bias 0.
template <class Spec, Shape In, class T>
struct BatchNormBlobs {
  std::array<Param<T, Cuda>, 5> params_ = make_params<Spec, In, T, Cuda>();

  std::span<Param<T, Cuda>> params() { return params_; }
  void fill(Rng&, const Init&, bool) {
    for (auto& p : params_) p.value.fill(T{0});
    params_[batch_norm_blob::scale].value.fill(T{1});
  }
};

}  // namespace cuda

template <class Act, float Eps, float Maf, Shape In, cuda::CudaElement T>
struct LayerImpl<BatchNorm<Act, Eps, Maf>, In, T, Cuda> : cuda::BatchNormBlobs<BatchNorm<Act, Eps, Maf>, In, T> {
  using spec = BatchNorm<Act, Eps, Maf>;
  using backend = Cuda;
  static constexpr Shape out_shape = In;
  using enum cuda::batch_norm_blob::Index;
  using cuda::BatchNormBlobs<spec, In, T>::params_;

  // cuDNN's backward writes dx even when the model does not want it.
  std::size_t workspace_bytes(int n, Pass pass) const {
    return pass == Pass::backward ? std::size_t(n) * In.size() * sizeof(T) : 0;
  }

  void forward(const T* in, T* out, int n, Mode mode, T*) {
    training_ = mode == Mode::train;
    for (auto* b : {&mean_, &var_, &saved_mean_, &saved_inv_std_})
      if (b->size() == 0) b->assign(In.c, T{0});  // cuDNN blends into mean_ and var_: never garbage
    const cuda::dnn::BatchNorm norm(n, In.c, In.h, In.w, Eps);
    const cudaStream_t stream = cuda::context().stream();
    if (training_) {
      norm.forward_training(in, out, params_[scale].value.data(), params_[bias].value.data(), mean_.data(), var_.data(),
                            saved_mean_.data(), saved_inv_std_.data());
      cuda::kernels::batch_norm_moving_sums(params_[mean_sum].value.data(), params_[var_sum].value.data(),
                                            params_[factor].value.data(), mean_.data(), var_.data(), In.c, Maf, stream);
    } else {
      cuda::kernels::batch_norm_statistics(params_[mean_sum].value.data(), params_[var_sum].value.data(),
                                           params_[factor].value.data(), mean_.data(), var_.data(), In.c, stream);
      norm.forward_inference(in, out, params_[scale].value.data(), params_[bias].value.data(), mean_.data(), var_.data());
    }
    cuda::activate<Act>(out, std::size_t(n) * In.size());
  }

  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    cuda::activate_backward<Act>(out, dout, std::size_t(n) * In.size());
    if (training_) {
      cuda::dnn::BatchNorm(n, In.c, In.h, In.w, Eps)
          .backward(in, dout, din != nullptr ? din : ws, params_[scale].value.data(), params_[scale].grad.data(),
                    params_[bias].grad.data(), saved_mean_.data(), saved_inv_std_.data());
    } else {
      cuda::kernels::batch_norm_backward_fixed(in, dout, params_[scale].value.data(), mean_.data(), var_.data(), Eps,
                                               params_[scale].grad.data(), params_[bias].grad.data(), din, n, In.c,
                                               In.h * In.w, cuda::context().stream());
    }
  }

 private:
  // The batch's statistics (training) or the moving ones (inference), and cuDNN's saved values.
  Buffer<T, Cuda> mean_, var_, saved_mean_, saved_inv_std_;
  bool training_ = false;
};

// BF16 storage. The blobs are bf16 (what the solver, checkpoints and Caffe export see), but the
// layer computes in float: its operands widened in the workspace, cuDNN's float batch norm as
// above, and the moving sums accumulated in float copies, of which the blobs hold the rounding
// (summed in bf16, the sums would lose each batch's statistics in its 8-bit mantissa). A float
// copy whose rounding is no longer its blob (a checkpoint or copy_parameters wrote the blob) is
// taken afresh from it.
template <class Act, float Eps, float Maf, Shape In>
struct LayerImpl<BatchNorm<Act, Eps, Maf>, In, cuda::bf16, Cuda>
    : cuda::BatchNormBlobs<BatchNorm<Act, Eps, Maf>, In, cuda::bf16> {
  using T = cuda::bf16;
  using spec = BatchNorm<Act, Eps, Maf>;
  using backend = Cuda;
  static constexpr Shape out_shape = In;
  using enum cuda::batch_norm_blob::Index;
  using cuda::BatchNormBlobs<spec, In, T>::params_;

  // x, and y or dy, and dx, as floats.
  std::size_t workspace_bytes(int n, Pass) const { return cuda::float_slots_bytes(0, std::size_t(n) * In.size(), 3); }

  void forward(const T* in, T* out, int n, Mode mode, T* ws) {
    training_ = mode == Mode::train;
    if (moving_.size() == 0) {  // zeros: in step with the zero blobs, and never garbage for cuDNN to blend
      moving_.assign(2 * In.c + 1, 0.0f);
      for (auto* b : {&scale_, &bias_, &mean_, &var_, &saved_mean_, &saved_inv_std_, &scale_grad_, &bias_grad_})
        b->assign(In.c, 0.0f);
    }
    const std::size_t count = std::size_t(n) * In.size();
    float* x = cuda::float_slot(ws, 0, count, 0);
    float* y = cuda::float_slot(ws, 0, count, 1);
    const cudaStream_t stream = cuda::context().stream();
    cuda::kernels::widen(in, x, count, stream);
    cuda::kernels::widen(params_[scale].value.data(), scale_.data(), In.c, stream);
    cuda::kernels::widen(params_[bias].value.data(), bias_.data(), In.c, stream);
    for (const cuda::BatchNormBlob b : {mean_sum, var_sum, factor})
      cuda::kernels::follow_storage(params_[b].value.data(), moving(b), params_[b].size(), stream);
    const cuda::dnn::BatchNorm norm(n, In.c, In.h, In.w, Eps);
    if (training_) {
      norm.forward_training(x, y, scale_.data(), bias_.data(), mean_.data(), var_.data(), saved_mean_.data(),
                            saved_inv_std_.data());
      cuda::kernels::batch_norm_moving_sums(moving(mean_sum), moving(var_sum), moving(factor), mean_.data(),
                                            var_.data(), In.c, Maf, stream);
      for (const cuda::BatchNormBlob b : {mean_sum, var_sum, factor})
        cuda::kernels::narrow(moving(b), params_[b].value.data(), params_[b].size(), stream);
    } else {
      cuda::kernels::batch_norm_statistics(moving(mean_sum), moving(var_sum), moving(factor), mean_.data(), var_.data(),
                                           In.c, stream);
      norm.forward_inference(x, y, scale_.data(), bias_.data(), mean_.data(), var_.data());
    }
    cuda::kernels::narrow(y, out, count, stream);
    cuda::activate<Act>(out, count);
  }

  void backward(const T* in, const T* out, T* dout, T* din, int n, T* ws) {
    const std::size_t count = std::size_t(n) * In.size();
    cuda::activate_backward<Act>(out, dout, count);
    float* x = cuda::float_slot(ws, 0, count, 0);
    float* dy = cuda::float_slot(ws, 0, count, 1);
    float* dx = cuda::float_slot(ws, 0, count, 2);
    const cudaStream_t stream = cuda::context().stream();
    cuda::kernels::widen(in, x, count, stream);
    cuda::kernels::widen(dout, dy, count, stream);
    if (training_) {
      cuda::dnn::BatchNorm(n, In.c, In.h, In.w, Eps)
          .backward(x, dy, dx, scale_.data(), scale_grad_.data(), bias_grad_.data(), saved_mean_.data(),
                    saved_inv_std_.data());
    } else {
      cuda::kernels::batch_norm_backward_fixed(x, dy, scale_.data(), mean_.data(), var_.data(), Eps, scale_grad_.data(),
                                               bias_grad_.data(), din != nullptr ? dx : nullptr, n, In.c, In.h * In.w,
                                               stream);
    }
    cuda::kernels::narrow(scale_grad_.data(), params_[scale].grad.data(), In.c, stream);
    cuda::kernels::narrow(bias_grad_.data(), params_[bias].grad.data(), In.c, stream);
    if (din != nullptr) cuda::kernels::narrow(dx, din, count, stream);
  }

 private:
  // The float copy of a moving-sum blob: mean sums, variance sums, then the factor.
  float* moving(cuda::BatchNormBlob b) { return moving_.data() + (b == mean_sum ? 0 : b == var_sum ? In.c : 2 * In.c); }

  Buffer<float, Cuda> moving_;
  // The forward pass's scale and bias as floats (the backward pass uses them too), the batch's
  // or the moving statistics, cuDNN's saved values, and the gradients before rounding.
  Buffer<float, Cuda> scale_, bias_, mean_, var_, saved_mean_, saved_inv_std_, scale_grad_, bias_grad_;
  bool training_ = false;
};

}  // namespace hcnn
