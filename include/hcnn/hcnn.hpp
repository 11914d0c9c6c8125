// hcnn/hcnn.hpp — the umbrella header: everything a program using hcnn needs on the CPU.
//
// hcnn builds heterogeneous CNNs: base networks declared as compile-time lists of layer
// templates (Net<Input<...>, Conv<...>, ...>), instantiated as Models on a backend. The
// modules can be included alone: networks.hpp (declaring and running networks: Eigen and
// OpenMP only), io.hpp (files: adds stb and zlib), train.hpp (the solver and the Trainer).
// The Cuda backend is <hcnn/backend/cuda.hpp>, with the hcnn::cuda target.
#pragma once

#include "networks.hpp"
#include "io.hpp"
#include "train.hpp"
