// hcnn/backend/cuda/pool.hpp — max and average pooling on the GPU with Caffe's windows, by
// hcnn's own kernels (kernels.hpp says why not cuDNN's).
#pragma once

#include "../../core/layer.hpp"
#include "../../layers/pool.hpp"
#include "activation.hpp"
#include "context.hpp"
#include "kernels.hpp"

namespace hcnn {

template <bool IsMax, int K, int S, int P, Shape In, cuda::CudaElement T>
struct LayerImpl<Pool<IsMax, K, S, P>, In, T, Cuda> : NoParams<T, Cuda> {
  using spec = Pool<IsMax, K, S, P>;
  static constexpr Shape out_shape = spec::template output<In>();

  std::size_t workspace_bytes(int, Pass) const { return 0; }

  void forward(const T* in, T* out, int n, Mode, T*) const {
    cuda::kernels::pool_forward(geometry(n), in, out, cuda::context().stream());
  }
  void backward(const T* in, const T*, T* dout, T* din, int n, T*) {
    if (din != nullptr) cuda::kernels::pool_backward(geometry(n), in, dout, din, cuda::context().stream());
  }

 private:
  static cuda::kernels::PoolGeometry geometry(int n) {
    return {n * In.c, In.h, In.w, out_shape.h, out_shape.w, K, S, P, IsMax};
  }
};

}  // namespace hcnn
