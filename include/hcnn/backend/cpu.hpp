// hcnn/backend/cpu.hpp — the CPU backend: Eigen + OpenMP implementations of every layer.
#pragma once

#include "cpu/batch_norm.hpp"
#include "cpu/conv.hpp"
#include "cpu/dropout.hpp"
#include "cpu/fc.hpp"
#include "cpu/lrn.hpp"
#include "cpu/pool.hpp"
#include "cpu/simd.hpp"
