// libFuzzer target: the image decode path (stb_image via decode_image) and preprocessing.
// stb's decoders are compiled into this target (stb_for_fuzzing.cpp) so that they are
// instrumented and checked by AddressSanitizer; the shared libstb that hcnn otherwise links is
// not.
#include <hcnn/io/image.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Headers may claim huge images that take long to decode; skip those to keep the fuzzer fast
  // (the size limit of decode_image itself is tested in tests/test_data.cpp).
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const hcnn::ImageSize claimed = hcnn::image_size(bytes, "fuzz.img");
    if (std::int64_t{claimed.width} * claimed.height > 256 * 256) return 0;
    const hcnn::Image image = hcnn::decode_image(bytes, "fuzz.img");
    std::vector<float> out(3 * 8 * 8);
    hcnn::preprocess_into(image, hcnn::Preprocess{.resize_to = 10, .crop = 8}, out.data());
  } catch (const hcnn::IoError&) {
  }
  return 0;
}
