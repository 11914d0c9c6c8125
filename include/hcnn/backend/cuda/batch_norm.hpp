// hcnn/backend/cuda/batch_norm.hpp — BatchNorm + Scale on the GPU, with Caffe's moving sums.
//
// Training normalises by cuDNN's spatial batch norm, asked for the batch's own mean and
// unbiased variance (its running values with an averaging factor of 1), which a kernel then
// folds into Caffe's sums (sum <- maf * sum + value, factor <- maf * factor + 1). Inference
// and frozen layers normalise with sum / factor. The backward pass is cuDNN's through the batch
// statistics, or hcnn's kernel when the statistics were fixed (kernels.hpp).
#pragma once

#include <array>
#include <concepts>
#include <span>

#include "../../core/layer.hpp"
#include "../../layers/batch_norm.hpp"
#include "activation.hpp"
#include "buffer.hpp"
#include "cudnn.hpp"
#include "kernels.hpp"

namespace hcnn {

template <class Act, float Eps, float Maf, Shape In, cuda::CudaElement T>
struct LayerImpl<BatchNorm<Act, Eps, Maf>, In, T, Cuda> {
  static_assert(std::same_as<T, float>,
                "BatchNorm on Cuda: float only (with BF16 storage its moving sums would lose the batches' statistics "
                "in bf16's 8 bits of mantissa)");
  using spec = BatchNorm<Act, Eps, Maf>;
  using backend = Cuda;
  static constexpr Shape out_shape = In;
  enum Blob { mean_sum, var_sum, factor, scale, bias };

  std::array<Param<T, Cuda>, 5> params_ = make_params<spec, In, T, Cuda>();

  std::span<Param<T, Cuda>> params() { return params_; }
  // cuDNN's backward writes dx even when the model does not want it.
  std::size_t workspace_bytes(int n, Pass pass) const {
    return pass == Pass::backward ? std::size_t(n) * In.size() * sizeof(T) : 0;
  }

  // Caffe's initial state: zero moving sums, scale 1, bias 0.
  void fill(Rng&, const Init&, bool) {
    for (auto& p : params_) p.value.fill(T{0});
    params_[scale].value.fill(T{1});
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

}  // namespace hcnn
