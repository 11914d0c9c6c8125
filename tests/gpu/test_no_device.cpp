// On a machine without a GPU (CI's), a Cuda model is refused with a CudaError that says so,
// instead of a crash or a raw CUDA status. With a GPU there is nothing to check here: skip (77).
#include <hcnn/backend/cuda.hpp>
#include <hcnn/hcnn.hpp>

#include <cstdio>
#include <string>

int main() {
  if (hcnn::cuda::device_count() > 0) {
    std::printf("skipped: this machine has a GPU (the test is for machines without one)\n");
    return 77;
  }
  using Tiny = hcnn::Net<hcnn::Input<1, 8, 8>, hcnn::Conv<2, 3>, hcnn::FC<4>, hcnn::Softmax<2>>;
  try {
    hcnn::Model<Tiny, hcnn::Cuda> model(1);
  } catch (const hcnn::CudaError& e) {
    const std::string message = e.what();
    std::printf("refused as expected: %s\n", message.c_str());
    return message.find("needs an NVIDIA GPU") != std::string::npos ? 0 : 1;
  }
  std::printf("FAILED: a Cuda model was made on a machine without a GPU\n");
  return 1;
}
