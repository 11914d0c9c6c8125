// hcnn/backend/cuda.hpp — the Cuda backend (cuDNN + cuBLAS). Include it, and link hcnn::cuda,
// only in programs that use a GPU: <hcnn/hcnn.hpp> never includes a CUDA header.
//
// Here so far: checked calls (check.hpp), device queries (device.hpp) and device buffers with
// an explicit host transfer (buffer.hpp). The layers' LayerImpl<Spec, In, T, Cuda>
// specialisations are issue 14's next step (docs/gpu.md).
#pragma once

#include "cuda/buffer.hpp"
#include "cuda/check.hpp"
#include "cuda/device.hpp"
