// hcnn/io/idx.hpp — IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed, and the
// Fashion-MNIST dataset of Debian's dataset-fashion-mnist package.
//
// IDX: two zero bytes, a type byte (0x08: unsigned bytes, the only type these datasets use), a
// rank byte, rank big-endian u32 dimensions, then the values. Compressed files are gzip: the
// header is read here, the deflate stream inflated by io/inflate.hpp, and the CRC-32 and length
// of the gzip trailer checked.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/shape.hpp"
#include "binary.hpp"
#include "inflate.hpp"
#include "mapped_file.hpp"

namespace hcnn {

struct IdxArray {
  std::vector<int> dims;
  std::vector<std::uint8_t> values;
};

namespace io {

// Inflates a gzip member (RFC 1952); `source` names the file in errors.
inline std::vector<std::uint8_t> gunzip(std::span<const std::byte> data, const std::filesystem::path& source) {
  auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(data[i]); };
  if (data.size() < 18 || byte(0) != 0x1F || byte(1) != 0x8B) throw IoError(source, "not a gzip file");
  if (byte(2) != 8) throw IoError(source, "gzip: unknown compression method " + std::to_string(byte(2)));
  const std::uint8_t flags = byte(3);
  std::size_t pos = 10;
  auto need = [&](std::size_t n) {
    if (n > data.size() || pos > data.size() - n) throw IoError(source, "gzip: truncated header");
  };
  if (flags & 0x04) {  // FEXTRA
    need(2);
    const std::size_t length = byte(pos) | (std::size_t(byte(pos + 1)) << 8);
    pos += 2;
    need(length);
    pos += length;
  }
  for (std::uint8_t field : {std::uint8_t{0x08}, std::uint8_t{0x10}}) {  // FNAME, FCOMMENT: zero-terminated
    if (flags & field) {
      while (true) {
        need(1);
        if (byte(pos++) == 0) break;
      }
    }
  }
  if (flags & 0x02) {  // FHCRC
    need(2);
    pos += 2;
  }
  std::vector<std::uint8_t> out;
  std::size_t consumed = 0;
  try {
    out = inflate(data.subspan(pos), consumed);
  } catch (const InflateError& e) {
    throw IoError(source, std::string("gzip: corrupt or truncated compressed data: ") + e.what());
  }
  if (data.size() - pos - consumed < 8) throw IoError(source, "gzip: the trailer is missing, the file is truncated");
  std::uint32_t crc, size;
  std::memcpy(&crc, data.data() + pos + consumed, 4);
  std::memcpy(&size, data.data() + pos + consumed + 4, 4);
  if (size != static_cast<std::uint32_t>(out.size()) ||
      crc32({reinterpret_cast<const std::byte*>(out.data()), out.size()}) != crc)
    throw IoError(source, "gzip: checksum mismatch, the file is corrupt");
  return out;
}

// Parses IDX bytes (already inflated).
inline IdxArray parse_idx(std::span<const std::byte> data, const std::filesystem::path& source) {
  auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(data[i]); };
  if (data.size() < 4 || byte(0) != 0 || byte(1) != 0)
    throw IoError(source, "not an IDX file (wrong magic number)");
  if (byte(2) != 0x08)
    throw IoError(source, "IDX value type 0x" + std::to_string(byte(2)) + " is not supported (only unsigned bytes, 0x08)");
  const int rank = byte(3);
  if (rank == 0 || rank > 4) throw IoError(source, "IDX rank " + std::to_string(rank) + " is not supported");
  if (data.size() < 4 + 4 * std::size_t(rank)) throw IoError(source, "IDX header truncated");
  IdxArray array;
  std::uint64_t count = 1;
  for (int d = 0; d < rank; ++d) {
    const std::size_t at = 4 + 4 * std::size_t(d);
    const std::uint32_t dim =
        (std::uint32_t(byte(at)) << 24) | (std::uint32_t(byte(at + 1)) << 16) | (std::uint32_t(byte(at + 2)) << 8) | byte(at + 3);
    if (dim == 0 || dim > 0x7FFFFFFF) throw IoError(source, "IDX dimension " + std::to_string(dim) + " is invalid");
    array.dims.push_back(int(dim));
    count *= dim;
    if (count > (std::uint64_t{1} << 34)) throw IoError(source, "IDX array is impossibly large");
  }
  const std::size_t header = 4 + 4 * std::size_t(rank);
  if (data.size() - header != count)
    throw IoError(source, "IDX header announces " + std::to_string(count) + " values, the file holds " +
                              std::to_string(data.size() - header));
  const auto* values = reinterpret_cast<const std::uint8_t*>(data.data() + header);
  array.values.assign(values, values + count);
  return array;
}

}  // namespace io

// Reads an IDX file, gzip-compressed or not (recognised by its content, not its name).
inline IdxArray read_idx(const std::filesystem::path& path) {
  const io::MappedFile file(path);
  const auto bytes = file.bytes();
  if (bytes.size() >= 2 && static_cast<std::uint8_t>(bytes[0]) == 0x1F && static_cast<std::uint8_t>(bytes[1]) == 0x8B) {
    const auto inflated = io::gunzip(bytes, path);
    return io::parse_idx({reinterpret_cast<const std::byte*>(inflated.data()), inflated.size()}, path);
  }
  return io::parse_idx(bytes, path);
}

// Fashion-MNIST (or MNIST) as a dataset: 1x28x28 images scaled to [0, 1], labels 0-9.
class FashionMnist {
 public:
  static constexpr const char* debian_folder = "/usr/share/datasets/fashion-mnist";

  explicit FashionMnist(const std::filesystem::path& folder = debian_folder, bool train = true) {
    const std::string prefix = train ? "train" : "t10k";
    const auto images_path = find(folder, prefix + "-images-idx3-ubyte");
    const auto labels_path = find(folder, prefix + "-labels-idx1-ubyte");
    images_ = read_idx(images_path);
    const IdxArray labels = read_idx(labels_path);
    if (images_.dims.size() != 3) throw IoError(images_path, "expected a rank-3 IDX array of images");
    if (labels.dims.size() != 1) throw IoError(labels_path, "expected a rank-1 IDX array of labels");
    if (labels.dims[0] != images_.dims[0])
      throw IoError(labels_path, std::to_string(labels.dims[0]) + " labels for " + std::to_string(images_.dims[0]) +
                                     " images in " + images_path.string());
    for (std::uint8_t l : labels.values)
      if (l > 9) throw IoError(labels_path, "label " + std::to_string(l) + " is outside 0-9");
    labels_.assign(labels.values.begin(), labels.values.end());
  }

  [[nodiscard]] std::size_t size() const { return labels_.size(); }
  [[nodiscard]] Shape shape() const { return {1, images_.dims[1], images_.dims[2]}; }
  [[nodiscard]] int label(std::size_t i) const { return labels_[i]; }
  void load(std::size_t i, float* out, Rng* = nullptr) const {
    const std::size_t n = std::size_t(shape().size());
    const std::uint8_t* pixels = images_.values.data() + i * n;
    for (std::size_t k = 0; k < n; ++k) out[k] = float(pixels[k]) / 255.0f;
  }

 private:
  static std::filesystem::path find(const std::filesystem::path& folder, const std::string& stem) {
    for (const char* suffix : {".gz", ""}) {
      std::filesystem::path candidate = folder / (stem + suffix);
      std::error_code error;
      if (std::filesystem::exists(candidate, error)) return candidate;
    }
    throw IoError(folder / (stem + ".gz"), "no such file (install Debian's dataset-fashion-mnist)");
  }

  IdxArray images_;
  std::vector<int> labels_;
};

}  // namespace hcnn
