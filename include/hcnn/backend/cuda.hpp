// hcnn/backend/cuda.hpp — the Cuda backend (cuDNN + cuBLAS + a few kernels of hcnn's own).
// Include it, and link hcnn::cuda, only in programs that use a GPU: <hcnn/hcnn.hpp> never
// includes a CUDA header.
//
//   #include <hcnn/hcnn.hpp>
//   #include <hcnn/backend/cuda.hpp>
//   Model<zoo::CaffeNet, Cuda> model(1);   // parameters, activations and solver on the GPU
//
// Every layer has a LayerImpl<Spec, In, float, Cuda>; parameters cross to and from the host
// through read_on_host / write_on_host (fillers, checkpoints, Caffe import), so those work on a
// Cuda model unchanged. docs/gpu.md says what each op runs on and what has been checked.
#pragma once

#include "cuda/activation.hpp"
#include "cuda/batch_norm.hpp"
#include "cuda/buffer.hpp"
#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/conv.hpp"
#include "cuda/cudnn.hpp"
#include "cuda/device.hpp"
#include "cuda/dropout.hpp"
#include "cuda/fc.hpp"
#include "cuda/graph.hpp"
#include "cuda/kernels.hpp"
#include "cuda/launch_values.hpp"
#include "cuda/lrn.hpp"
#include "cuda/pool.hpp"
#include "cuda/sgd.hpp"
