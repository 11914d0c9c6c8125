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

}  // namespace hcnn
