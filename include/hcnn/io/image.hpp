// hcnn/io/image.hpp — decoding images and preparing them as the Caffe models expect.
//
// Images are decoded with stb_image (JPEG, PNG and BMP; other formats are refused) into 8-bit RGB: greyscale,
// grey+alpha and RGBA images become 3 channels (alpha is dropped). Preprocessing follows the
// pretrained models: resize (to 256x256, or the shorter side to 256), crop (centre, or random
// for training), optional mirroring, then BGR order, CHW layout, mean subtraction (per channel
// or a mean image) and an optional scale. Every failure names the file.
#pragma once

#include <stb_image.h>
#include <stb_image_resize.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/shape.hpp"
#include "mapped_file.hpp"

namespace hcnn {

// 8-bit RGB pixels held elsewhere, rows top to bottom, pixels interleaved (R, G, B).
struct ImageView {
  int width = 0;
  int height = 0;
  const std::uint8_t* rgb = nullptr;

  [[nodiscard]] const std::uint8_t* pixel(int x, int y) const { return rgb + 3 * (std::size_t(y) * width + x); }
};

// An 8-bit RGB image, rows top to bottom, pixels interleaved (R, G, B).
struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> rgb;

  [[nodiscard]] const std::uint8_t* pixel(int x, int y) const { return rgb.data() + 3 * (std::size_t(y) * width + x); }
  [[nodiscard]] ImageView view() const { return {width, height, rgb.data()}; }
};

// What decoding one image may cost. A file of a few hundred bytes can claim 2^24 x 2^24 pixels,
// and stb allocates for what the header claims, so the header is checked against these before
// any decoder runs. Raise them for very large photographs.
struct ImageLimits {
  std::int64_t max_pixels = std::int64_t{1} << 26;  // 67 megapixels (8192 x 8192)
  std::int64_t max_bytes = std::int64_t{1} << 30;   // the decoder's estimated peak memory: 1 GiB
};

namespace io {

// Where a JPEG's data begin, just past its start-of-image marker (stb accepts fill bytes,
// 0xFF, before it); 0 if the data are not a JPEG.
inline std::size_t jpeg_body_start(std::span<const std::byte> data) {
  std::size_t pos = 0;
  while (pos < data.size() && static_cast<std::uint8_t>(data[pos]) == 0xFF) ++pos;
  return pos > 0 && pos < data.size() && static_cast<std::uint8_t>(data[pos]) == 0xD8 ? pos + 1 : 0;
}

// Rejects two kinds of JPEG that make the stb_image of Debian 12 read or write out of bounds
// (both found by tests/fuzz/fuzz_image.cpp; newer stb releases reject the first):
//   - a Huffman table (DHT) with more than 256 codes, which overflows stb's code-size table;
//   - a scan (SOS) that uses a Huffman table no DHT defined, which stb decodes with
//     uninitialised tables;
// and truncated JPEGs (no end-of-image marker), which stb decodes as if the missing data were
// zeros, without a word. Walks the marker segments (skipping entropy-coded data) the way stb
// reads them.
inline void check_jpeg_structure(std::span<const std::byte> data, const std::filesystem::path& source) {
  auto at = [&](std::size_t i) { return i < data.size() ? static_cast<std::uint8_t>(data[i]) : std::uint8_t{0}; };
  std::size_t pos = jpeg_body_start(data);
  if (pos == 0) return;  // not a JPEG
  bool defined[2][4] = {};  // [DC, AC][table id]
  bool progressive = false;
  while (pos + 2 <= data.size()) {
    if (at(pos) != 0xFF) {  // entropy-coded data: find the next marker
      ++pos;
      continue;
    }
    const std::uint8_t marker = at(pos + 1);
    if (marker == 0x00 || marker == 0xFF || (marker >= 0xD0 && marker <= 0xD8) || marker == 0x01) {
      pos += marker == 0xFF ? 1 : 2;  // stuffed zero, fill byte, restart marker, SOI, TEM
      continue;
    }
    if (marker == 0xD9) return;  // end of image
    if (pos + 4 > data.size()) break;
    const std::size_t length = (std::size_t(at(pos + 2)) << 8) | at(pos + 3);
    if (length < 2) return;  // stb reports it
    if (marker == 0xC2) progressive = true;
    if (marker == 0xC4) {
      // stb reads each table's counts wherever they are, even past the segment's end (and as
      // zeros past the file's end), so this loop does too.
      long left = static_cast<long>(length) - 2;
      std::size_t table = pos + 4;
      while (left > 0) {
        const std::uint8_t kind = at(table);
        if ((kind >> 4) > 1 || (kind & 15) > 3) return;  // stb rejects it
        std::size_t codes = 0;
        for (std::size_t i = 1; i <= 16; ++i) codes += at(table + i);
        if (codes > 256)
          throw IoError(source, "corrupt JPEG: a Huffman table declares " + std::to_string(codes) + " codes (at most 256)");
        defined[kind >> 4][kind & 15] = true;
        table += 17 + codes;
        left -= static_cast<long>(17 + codes);
      }
    } else if (marker == 0xDA) {
      const std::size_t components = at(pos + 4);
      const std::size_t spectral_start = at(pos + 5 + 2 * components);
      const std::uint8_t approximation_high = at(pos + 7 + 2 * components) >> 4;
      for (std::size_t c = 0; c < components; ++c) {
        const std::uint8_t tables = at(pos + 6 + 2 * c);
        const int dc = tables >> 4, ac = tables & 15;
        if (dc > 3 || ac > 3) return;  // stb rejects it
        const bool needs_dc = progressive ? spectral_start == 0 && approximation_high == 0 : true;
        const bool needs_ac = progressive ? spectral_start > 0 : true;
        if ((needs_dc && !defined[0][dc]) || (needs_ac && !defined[1][ac]))
          throw IoError(source, "corrupt JPEG: a scan uses a Huffman table that is never defined");
      }
    }
    if (pos + 2 + length > data.size()) break;
    pos += 2 + length;
  }
  throw IoError(source, "truncated JPEG: the data end before its end-of-image marker");
}

// Rejects PNG chunks whose length runs past the end of the file: stb's decoder grows its buffer
// to a chunk's claimed length (up to 2 GB) before it finds the data missing.
inline void check_png_chunks(std::span<const std::byte> data, const std::filesystem::path& source) {
  constexpr std::size_t signature = 8;
  if (data.size() < signature || static_cast<std::uint8_t>(data[0]) != 0x89 || static_cast<std::uint8_t>(data[1]) != 'P')
    return;
  std::size_t pos = signature;
  while (pos + 8 <= data.size()) {
    std::uint64_t length = 0;
    for (std::size_t i = 0; i < 4; ++i) length = (length << 8) | static_cast<std::uint8_t>(data[pos + i]);
    if (length + 12 > data.size() - pos)
      throw IoError(source, "corrupt or truncated PNG: a chunk of " + std::to_string(length) + " bytes runs past the end");
    pos += 12 + static_cast<std::size_t>(length);
  }
}

// Only JPEG, PNG and BMP reach stb: its other decoders (PNM, PSD, HDR, PIC, GIF, TGA) are not
// needed for image datasets and fuzzing found undefined behaviour in some of them.
inline void check_supported_format(std::span<const std::byte> data, const std::filesystem::path& source) {
  auto starts_with = [&](std::initializer_list<std::uint8_t> magic) {
    if (data.size() < magic.size()) return false;
    std::size_t i = 0;
    for (std::uint8_t m : magic)
      if (static_cast<std::uint8_t>(data[i++]) != m) return false;
    return true;
  };
  if (jpeg_body_start(data) == 0 && !starts_with({0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A}) && !starts_with({'B', 'M'}))
    throw IoError(source, "cannot decode the image: not a JPEG, PNG or BMP file");
}


// stb's reason for its last failure, never empty (a PNG without its IEND chunk gives none).
inline std::string stb_reason() {
  const char* reason = stbi_failure_reason();
  return reason != nullptr && *reason != '\0' ? reason : "corrupt or truncated image data";
}

}  // namespace io

namespace io {

inline std::uint32_t big_endian32(std::span<const std::byte> data, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<std::uint8_t>(data[at + i]);
  return v;
}

// Bytes past the end read as zeros (as stb reads them).
inline std::uint32_t little_endian(std::span<const std::byte> data, std::size_t at, std::size_t bytes) {
  std::uint32_t v = 0;
  for (std::size_t i = bytes; i-- > 0;) v = (v << 8) | (at + i < data.size() ? static_cast<std::uint8_t>(data[at + i]) : 0u);
  return v;
}

inline bool is_png(std::span<const std::byte> data) {
  return data.size() >= 33 && static_cast<std::uint8_t>(data[0]) == 0x89 && static_cast<std::uint8_t>(data[1]) == 'P';
}

inline std::string bytes_text(std::int64_t bytes) {
  return bytes < (std::int64_t{1} << 20) ? std::to_string(bytes) + " bytes" : std::to_string(bytes >> 20) + " MiB";
}

inline std::string size_text(std::int64_t width, std::int64_t height) {
  return std::to_string(width) + "x" + std::to_string(height);
}

// Refuses width x height pixels over the limit (in unsigned 64 bits: two 32-bit header sizes
// multiply without overflow only there).
inline void check_pixels(std::uint64_t width, std::uint64_t height, const std::filesystem::path& source,
                         const ImageLimits& limits) {
  if (width * height > static_cast<std::uint64_t>(std::max<std::int64_t>(limits.max_pixels, 0)))
    throw IoError(source, "the image is too large (" + size_text(std::int64_t(width), std::int64_t(height)) +
                              "; the limit is " + std::to_string(limits.max_pixels) + " pixels, ImageLimits::max_pixels)");
}

// Refuses a PNG whose header claims more than the pixel limit before stb sees it: stb's own
// limit then fails every decoder in turn and reports "unknown image type".
inline void check_png_size(std::span<const std::byte> data, const std::filesystem::path& source, const ImageLimits& limits) {
  if (!is_png(data)) return;
  check_pixels(big_endian32(data, 16), big_endian32(data, 20), source, limits);  // IHDR, the first chunk
}

// What the decoder holds at its peak, estimated from the header: stb's decoded samples (twice
// over for PNG: inflated rows and unfiltered image; three times for JPEG: component planes and
// a progressive scan's coefficients), then its RGB conversion and hcnn's copy.
inline std::int64_t decode_bytes(std::span<const std::byte> data, std::int64_t pixels, int channels) {
  const bool png = is_png(data);
  const bool sixteen_bit = stbi_is_16_bit_from_memory(reinterpret_cast<const stbi_uc*>(data.data()), int(data.size())) != 0;
  const std::int64_t per_sample = sixteen_bit ? 2 : 1;
  const std::int64_t copies = png ? 2 : jpeg_body_start(data) != 0 ? 3 : 1;
  return pixels * (copies * channels * per_sample + 3 + 3);
}

// Refuses files shorter than their header says they must be, which stb would decode as if the
// missing data were zeros (BMP) or only after allocating for the claimed size (PNG, JPEG):
//   - BMP (uncompressed, the only kind stb reads): the rows the header describes;
//   - PNG: DEFLATE expands at most 1032:1, so the image data chunks must hold at least the
//     image's bytes / 1032;
//   - JPEG: every 8x8 block of every scan costs at least one bit.
inline void check_data_length(std::span<const std::byte> data, const std::filesystem::path& source, int width, int height) {
  const std::string claim = "the " + size_text(width, height) + " pixels its header promises";
  if (static_cast<std::uint8_t>(data[0]) == 'B' && static_cast<std::uint8_t>(data[1]) == 'M') {
    const std::uint32_t header = little_endian(data, 14, 4);
    const std::uint32_t bits = little_endian(data, header == 12 ? 24 : 28, 2);
    const std::uint32_t compression = header == 12 ? 0 : little_endian(data, 30, 4);
    if (compression != 0 && compression != 3) return;  // stb refuses other kinds itself
    const std::int64_t row = (std::int64_t{width} * bits + 31) / 32 * 4;
    const std::int64_t needed = 14 + std::int64_t{header} + row * height;
    if (std::int64_t(data.size()) < needed)
      throw IoError(source, "truncated BMP: " + claim + " take " + std::to_string(needed) + " bytes, the file has " +
                                std::to_string(data.size()));
  } else if (is_png(data)) {
    const std::uint8_t depth = static_cast<std::uint8_t>(data[24]), colour = static_cast<std::uint8_t>(data[25]);
    const int samples = colour == 2 ? 3 : colour == 4 ? 2 : colour == 6 ? 4 : 1;  // grey and palette: 1
    std::int64_t compressed = 0;
    for (std::size_t pos = 8; pos + 8 <= data.size();) {  // check_png_chunks has checked the lengths
      const std::uint32_t length = big_endian32(data, pos);
      if (big_endian32(data, pos + 4) == 0x49444154) compressed += length;  // "IDAT"
      pos += 12 + std::size_t(length);
    }
    const std::int64_t raw = std::int64_t{height} * ((std::int64_t{width} * samples * depth + 7) / 8);
    if (compressed * 1032 < raw)
      throw IoError(source, "corrupt or truncated PNG: " + std::to_string(compressed) + " bytes of compressed data cannot "
                                "hold " + claim);
  } else if (jpeg_body_start(data) != 0) {
    const std::int64_t blocks = ((std::int64_t{width} + 7) / 8) * ((std::int64_t{height} + 7) / 8);
    if (std::int64_t(data.size()) * 8 < blocks)
      throw IoError(source, "truncated JPEG: " + std::to_string(data.size()) + " bytes cannot hold " + claim);
  }
}

}  // namespace io

struct ImageSize {
  int width = 0;
  int height = 0;
};

// Reads an encoded image's size from its header, after the checks that keep malformed files
// away from stb's decoders and images over `limits` from being decoded; `source` names it in
// errors.
inline ImageSize image_size(std::span<const std::byte> encoded, const std::filesystem::path& source,
                            const ImageLimits& limits = {}) {
  if (encoded.empty()) throw IoError(source, "empty file, not an image");
  if (encoded.size() > std::size_t{1} << 31) throw IoError(source, "file too large for an image");
  io::check_supported_format(encoded, source);
  io::check_jpeg_structure(encoded, source);
  io::check_png_chunks(encoded, source);
  io::check_png_size(encoded, source, limits);
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(encoded.data()), static_cast<int>(encoded.size()), &width,
                             &height, &channels))
    throw IoError(source, "cannot decode the image: " + io::stb_reason());
  if (width <= 0 || height <= 0) throw IoError(source, "the image has zero size");
  const std::int64_t pixels = std::int64_t{width} * height;
  io::check_pixels(std::uint64_t(width), std::uint64_t(height), source, limits);
  const std::int64_t bytes = io::decode_bytes(encoded, pixels, channels);
  if (bytes > limits.max_bytes)
    throw IoError(source, "the image is too large to decode (" + io::size_text(width, height) + ", about " +
                              io::bytes_text(bytes) + "; the limit is " + io::bytes_text(limits.max_bytes) +
                              ", ImageLimits::max_bytes)");
  io::check_data_length(encoded, source, width, height);
  return {width, height};
}

// Decodes an encoded image held in memory; `source` names it in errors.
inline Image decode_image(std::span<const std::byte> encoded, const std::filesystem::path& source,
                          const ImageLimits& limits = {}) {
  image_size(encoded, source, limits);
  const auto* bytes = reinterpret_cast<const stbi_uc*>(encoded.data());
  const int length = static_cast<int>(encoded.size());
  int width = 0, height = 0, channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load_from_memory(bytes, length, &width, &height, &channels, 3),
                                                   stbi_image_free);
  if (!pixels) throw IoError(source, "cannot decode the image: " + io::stb_reason());
  Image image{width, height, {}};
  image.rgb.assign(pixels.get(), pixels.get() + std::size_t(width) * height * 3);
  return image;
}

inline Image load_image(const std::filesystem::path& path, const ImageLimits& limits = {}) {
  const io::MappedFile file(path);
  return decode_image(file.bytes(), path, limits);
}

// Bilinear-family resampling (stb's default Mitchell/Catmull-Rom filters).
inline Image resize(const Image& image, int width, int height) {
  if (width == image.width && height == image.height) return image;
  Image out{width, height, std::vector<std::uint8_t>(std::size_t(width) * height * 3)};
  if (!stbir_resize_uint8(image.rgb.data(), image.width, image.height, 0, out.rgb.data(), width, height, 0, 3))
    throw Error("resize: cannot resize " + std::to_string(image.width) + "x" + std::to_string(image.height) + " to " +
                std::to_string(width) + "x" + std::to_string(height));
  return out;
}

// How an image becomes a network input.
struct Preprocess {
  enum class Resize { exact, shorter_side };
  Resize resize_mode = Resize::exact;  // exact: resize_to x resize_to (the paper); shorter side: keep aspect
  int resize_to = 256;                 // 0: no resize
  int crop = 227;                      // square crop size
  bool random_crop = false;            // training augmentation: a random crop instead of the centre
  bool mirror = false;                 // training augmentation: flip horizontally with probability 1/2
  bool bgr = true;                     // Caffe models expect B, G, R channel order
  std::array<float, 3> mean{0, 0, 0};  // per channel, in the output channel order
  std::vector<float> mean_image{};     // optional C x crop x crop mean, subtracted instead of `mean`
  float scale = 1.0f;                  // applied after mean subtraction

  [[nodiscard]] Shape shape() const { return {3, crop, crop}; }
};

// Preprocess as one line of text (what a checkpoint's "preprocess" metadata holds), and back:
// "resize=exact:256 crop=227 bgr=1 mean=104.007,116.669,122.679 scale=1". The training-only
// fields (random crop, mirror) are not part of it; a mean image cannot be written.
inline std::string to_string(const Preprocess& p) {
  if (!p.mean_image.empty()) throw Error("to_string(Preprocess): a mean image cannot be written as text");
  char text[256];
  std::snprintf(text, sizeof text, "resize=%s:%d crop=%d bgr=%d mean=%.9g,%.9g,%.9g scale=%.9g",
                p.resize_mode == Preprocess::Resize::exact ? "exact" : "shorter_side", p.resize_to, p.crop, int(p.bgr),
                double(p.mean[0]), double(p.mean[1]), double(p.mean[2]), double(p.scale));
  return text;
}

inline Preprocess parse_preprocess(const std::string& text) {
  Preprocess p;
  char mode[16] = {};
  int bgr = 1;
  double m0, m1, m2, scale;
  if (std::sscanf(text.c_str(), "resize=%15[a-z_]:%d crop=%d bgr=%d mean=%lf,%lf,%lf scale=%lf", mode, &p.resize_to,
                  &p.crop, &bgr, &m0, &m1, &m2, &scale) != 8 ||
      (std::string(mode) != "exact" && std::string(mode) != "shorter_side") || p.crop <= 0 || p.resize_to < 0 ||
      !std::isfinite(m0) || !std::isfinite(m1) || !std::isfinite(m2) || !std::isfinite(scale))
    throw Error("parse_preprocess: '" + text + "' is not a preprocessing (resize=MODE:N crop=N bgr=0|1 mean=B,G,R scale=S)");
  p.resize_mode = std::string(mode) == "exact" ? Preprocess::Resize::exact : Preprocess::Resize::shorter_side;
  p.bgr = bgr != 0;
  p.mean = {float(m0), float(m1), float(m2)};
  p.scale = float(scale);
  return p;
}

namespace preprocess {
// CaffeNet (the paper's D): 256x256, centre 227, BGR minus the ImageNet mean image's channel means.
inline Preprocess caffe_imagenet() { return {.crop = 227, .mean = {104.007f, 116.669f, 122.679f}}; }
// VGG-19 (the paper's VD): 256x256 as in the paper, centre 224, BGR minus VGG's mean pixel.
inline Preprocess vgg_imagenet() { return {.crop = 224, .mean = {103.939f, 116.779f, 123.68f}}; }
}  // namespace preprocess

// The size `p` resizes `image` to (its own size when `p` says no resize).
inline ImageSize resized_size(const Image& image, const Preprocess& p) {
  if (p.resize_to <= 0) return {image.width, image.height};
  int w = p.resize_to, h = p.resize_to;
  if (p.resize_mode == Preprocess::Resize::shorter_side) {
    if (image.width < image.height) h = int((std::int64_t{image.height} * p.resize_to + image.width / 2) / image.width);
    else w = int((std::int64_t{image.width} * p.resize_to + image.height / 2) / image.height);
  }
  return {w, h};
}

// The image resized as `p` says (a copy when it says no resize).
inline Image resized_for(const Image& image, const Preprocess& p) {
  const ImageSize size = resized_size(image, p);
  return resize(image, size.width, size.height);
}

inline void check_crop_fits(ImageView sized, const Preprocess& p) {
  if (sized.width < p.crop || sized.height < p.crop)
    throw ShapeError("preprocess: a " + std::to_string(p.crop) + " crop does not fit a " + std::to_string(sized.width) +
                     "x" + std::to_string(sized.height) + " image; resize it first");
}

// The image resized as `p` says and its centre crop x crop square, still 8-bit RGB (what
// PreloadedImages keeps).
inline Image resize_and_crop(const Image& image, const Preprocess& p) {
  const Image sized = resized_for(image, p);
  check_crop_fits(sized.view(), p);
  const int x = (sized.width - p.crop) / 2, y = (sized.height - p.crop) / 2;
  Image out{p.crop, p.crop, std::vector<std::uint8_t>(std::size_t(p.crop) * p.crop * 3)};
  for (int row = 0; row < p.crop; ++row)
    std::copy(sized.pixel(x, y + row), sized.pixel(x, y + row) + 3 * p.crop, out.rgb.data() + std::size_t(row) * p.crop * 3);
  return out;
}

// Writes an image that is already at the size `p` resizes to into out (3 x crop x crop floats,
// CHW): the crop (centre, or random), mirror, channel order, mean and scale. `rng` drives the
// random crop and mirror when they are enabled.
inline void crop_into(ImageView sized, const Preprocess& p, float* out, Rng* rng = nullptr) {
  check_crop_fits(sized, p);
  int x = (sized.width - p.crop) / 2, y = (sized.height - p.crop) / 2;
  bool flip = false;
  if (rng != nullptr) {
    if (p.random_crop) {
      x = int(rng->below(std::uint64_t(sized.width - p.crop + 1)));
      y = int(rng->below(std::uint64_t(sized.height - p.crop + 1)));
    }
    if (p.mirror) flip = rng->below(2) == 1;
  }
  const std::size_t plane = std::size_t(p.crop) * p.crop;
  const bool use_mean_image = !p.mean_image.empty();
  if (use_mean_image && p.mean_image.size() != 3 * plane)
    throw ShapeError("preprocess: the mean image has " + std::to_string(p.mean_image.size()) + " values, expected 3x" +
                     std::to_string(p.crop) + "x" + std::to_string(p.crop));
  for (int row = 0; row < p.crop; ++row) {
    for (int col = 0; col < p.crop; ++col) {
      const std::uint8_t* px = sized.pixel(x + (flip ? p.crop - 1 - col : col), y + row);
      const std::size_t at = std::size_t(row) * p.crop + col;
      for (int c = 0; c < 3; ++c) {
        const float value = px[p.bgr ? 2 - c : c];
        const float mean = use_mean_image ? p.mean_image[c * plane + at] : p.mean[c];
        out[c * plane + at] = (value - mean) * p.scale;
      }
    }
  }
}

// Writes `image` preprocessed as `p` says into out (3 x crop x crop floats, CHW): resized
// (unless it is at that size already), then crop_into.
inline void preprocess_into(const Image& image, const Preprocess& p, float* out, Rng* rng = nullptr) {
  const ImageSize size = resized_size(image, p);
  if (size.width == image.width && size.height == image.height) return crop_into(image.view(), p, out, rng);
  crop_into(resize(image, size.width, size.height).view(), p, out, rng);
}

}  // namespace hcnn
