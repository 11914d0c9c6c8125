// libFuzzer target: checkpoint loading (header, checksum, structure, solver state). Each input
// is tried as it is and with its CRC-32 trailer recomputed, so that mutations also reach the
// parser behind the checksum.
#include <hcnn/backend/cpu/conv.hpp>
#include <hcnn/backend/cpu/fc.hpp>
#include <hcnn/io/checkpoint.hpp>
#include <hcnn/model.hpp>

#include <cstring>
#include <vector>

using Tiny = hcnn::Net<hcnn::Input<2, 6, 6>, hcnn::Conv<3, 3>, hcnn::FC<4>, hcnn::Softmax<3>>;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static hcnn::Model<Tiny> model(1);
  static hcnn::SgdSolver<float> solver;
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + size);
  try {
    hcnn::load_checkpoint(bytes, "fuzz.ckpt", model, &solver);
  } catch (const hcnn::IoError&) {
  }
  constexpr std::size_t header = 12;
  if (size >= header + 4) {
    const std::uint32_t crc = hcnn::io::crc32(std::span(bytes).subspan(header, size - header - 4));
    std::memcpy(bytes.data() + size - 4, &crc, 4);
    try {
      hcnn::load_checkpoint(bytes, "fuzz.ckpt", model, &solver);
    } catch (const hcnn::IoError&) {
    }
  }
  return 0;
}
