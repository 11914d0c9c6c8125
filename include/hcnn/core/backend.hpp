// hcnn/core/backend.hpp — backend tags and the execution mode.
//
// A backend is an empty tag type. The same network type is instantiated on either tag; the
// implementations live in backend/cpu/ and backend/cuda/ as specialisations of LayerImpl.
#pragma once

namespace hcnn {

// Eigen + OpenMP on the host.
struct Cpu {
  static constexpr const char* name = "Cpu";
};

// cuDNN + cuBLAS on an NVIDIA GPU (backend/cuda/).
struct Cuda {
  static constexpr const char* name = "Cuda";
};

// Training enables dropout masks; testing makes dropout the identity.
enum class Mode { train, test };

// What a backend sets up while a model's forward or backward pass runs, as a scope object:
// on the CPU, denormals flushed to zero (backend/cpu/denormals.hpp); on Cuda, a count of the
// passes (backend/cuda/context.hpp).
template <class Backend>
struct PassScope {};

}  // namespace hcnn
