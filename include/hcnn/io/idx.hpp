// hcnn/io/idx.hpp — IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed, and the
// Fashion-MNIST dataset of Debian's dataset-fashion-mnist package.
//
// IDX: two zero bytes, a type byte (0x08: unsigned bytes, the only type these datasets use), a
// rank byte, rank big-endian u32 dimensions, then the values. Compressed files are gzip,
// inflated by zlib (which checks the trailer's CRC-32 and length).
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/shape.hpp"
#include "binary.hpp"
#include "mapped_file.hpp"

namespace hcnn {

struct IdxArray {
  std::vector<int> dims;
  std::vector<std::uint8_t> values;
};

namespace io {

// Inflates a gzip file of one member (RFC 1952) with zlib; `source` names the file in errors.
// The trailer's ISIZE sizes the output: DEFLATE cannot expand data more than 1032:1, so a
// larger claim is corruption (or a truncated file), never a size to allocate for.
inline std::vector<std::uint8_t> gunzip(std::span<const std::byte> data, const std::filesystem::path& source) {
  auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(data[i]); };
  if (data.size() < 18 || byte(0) != 0x1F || byte(1) != 0x8B) throw IoError(source, "not a gzip file");
  if (data.size() > std::numeric_limits<uInt>::max()) throw IoError(source, "gzip: the file is too large (4 GB or more)");
  const std::size_t end = data.size();
  const std::uint64_t claimed = std::uint64_t(byte(end - 4)) | std::uint64_t(byte(end - 3)) << 8 |
                                std::uint64_t(byte(end - 2)) << 16 | std::uint64_t(byte(end - 1)) << 24;
  constexpr std::uint64_t deflate_max_ratio = 1032;
  if (claimed > deflate_max_ratio * data.size())
    throw IoError(source, "gzip: corrupt or truncated: its trailer claims " + std::to_string(claimed) +
                              " bytes, more than " + std::to_string(data.size()) + " compressed bytes can hold");
  // One byte of room beyond the claim shows a stream that inflates past it.
  std::vector<std::uint8_t> out(static_cast<std::size_t>(claimed) + 1);
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) throw IoError(source, "gzip: zlib cannot start (out of memory)");
  const std::unique_ptr<z_stream, int (*)(z_stream*)> release(&stream, inflateEnd);
  stream.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(data.data()));  // zlib does not write it
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(out.size());
  const int status = inflate(&stream, Z_FINISH);
  const std::string reason = stream.msg != nullptr ? stream.msg : "";
  if (status == Z_DATA_ERROR && (reason == "incorrect data check" || reason == "incorrect length check"))
    throw IoError(source, "gzip: checksum mismatch, the file is corrupt (zlib: " + reason + ")");
  if (status == Z_DATA_ERROR) throw IoError(source, "gzip: corrupt compressed data (zlib: " + reason + ")");
  if (status == Z_MEM_ERROR) throw IoError(source, "gzip: out of memory while inflating");
  if (status != Z_STREAM_END) {
    if (stream.avail_out == 0) throw IoError(source, "gzip: corrupt: the data inflate past the length in its trailer (the last 4 bytes)");
    throw IoError(source, "gzip: truncated: the compressed data end early");
  }
  if (stream.avail_in != 0)
    throw IoError(source, "gzip: " + std::to_string(stream.avail_in) + " unexpected bytes after the compressed data");
  out.resize(stream.total_out);  // zlib has checked the trailer: total_out == claimed
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
