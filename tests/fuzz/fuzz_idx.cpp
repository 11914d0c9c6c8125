// libFuzzer target: IDX parsing, plain and through the gzip/inflate path.
#include <hcnn/io/idx.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    if (size >= 2 && data[0] == 0x1F && data[1] == 0x8B) {
      const auto inflated = hcnn::io::gunzip(bytes, "fuzz.gz");
      hcnn::io::parse_idx({reinterpret_cast<const std::byte*>(inflated.data()), inflated.size()}, "fuzz.gz");
    } else {
      hcnn::io::parse_idx(bytes, "fuzz.idx");
    }
  } catch (const hcnn::IoError&) {
  }
  return 0;
}
