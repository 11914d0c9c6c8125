// The Cuda backend's first pieces on a GPU: device buffers round-trip through the host seam
// exactly, copies are deep, and failed calls are CudaErrors naming the call. Without a GPU the
// program exits with 77, which CTest reports as a skip (never a pass).
#include <hcnn/backend/cuda.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  const int devices = hcnn::cuda::device_count();
  if (devices == 0) {
    std::printf("skipped: no NVIDIA GPU on this machine (the Cuda tests need one)\n");
    return 77;
  }
  std::printf("%d device(s); device 0: %s\n", devices, hcnn::cuda::device_name(0).c_str());

  std::vector<float> host(1000);
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = 0.25f * float(i) - 7.0f;
  hcnn::Buffer<float, hcnn::Cuda> device;
  device.copy_from_host(host.data(), host.size());
  std::vector<float> back(host.size());
  device.copy_to_host(back.data(), back.size());
  expect(back == host, "a host -> device -> host round trip is exact");

  hcnn::Buffer<float, hcnn::Cuda> copy = device;
  device.fill(3.0f);
  copy.copy_to_host(back.data(), back.size());
  expect(back == host, "a copied buffer owns its memory");
  device.copy_to_host(back.data(), back.size());
  expect(back == std::vector<float>(host.size(), 3.0f), "fill sets every element");

  try {
    hcnn::Buffer<float, hcnn::Cuda> huge(std::size_t{1} << 50);  // 4 PiB
    expect(false, "an impossible allocation throws");
  } catch (const hcnn::CudaError& e) {
    const std::string message = e.what();
    expect(message.find("cudaMalloc") != std::string::npos && message.find("buffer.hpp:") != std::string::npos &&
               message.find("cudaErrorMemoryAllocation") != std::string::npos,
           "an out-of-memory error names the call, the file and line, and CUDA's error");
  }
  std::printf(failures == 0 ? "all Cuda checks passed\n" : "%d Cuda check(s) failed\n", failures);
  return failures == 0 ? 0 : 1;
}
