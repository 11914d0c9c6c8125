// hcnn/io/binary.hpp — little-endian binary reading with bounds checks, and CRC-32.
//
// The readers of hcnn's own formats (checkpoints, IDX) go through ByteReader, which never
// reads past its span and reports where a file ended early.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>

namespace hcnn::io {

// CRC-32 (IEEE 802.3, as gzip uses), by zlib. Continues from `crc` (0 to start).
inline std::uint32_t crc32(std::span<const std::byte> data, std::uint32_t crc = 0) {
  uLong value = crc;
  const auto* bytes = reinterpret_cast<const Bytef*>(data.data());
  for (std::size_t left = data.size(); left > 0;) {  // zlib takes at most a uInt at a time
    const auto n = static_cast<uInt>(std::min<std::size_t>(left, std::numeric_limits<uInt>::max()));
    value = ::crc32(value, bytes, n);
    bytes += n;
    left -= n;
  }
  return static_cast<std::uint32_t>(value);
}

class TruncatedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> data) : data_(data) {}

  template <class V>
  V read(const char* what) {
    V value;
    std::memcpy(&value, take(sizeof(V), what).data(), sizeof(V));
    return value;
  }
  std::span<const std::byte> take(std::size_t n, const char* what) {
    if (n > data_.size() - pos_)
      throw TruncatedError(std::string("ends inside ") + what + " (needs " + std::to_string(n) + " bytes at byte " +
                           std::to_string(pos_) + ", " + std::to_string(data_.size() - pos_) + " left)");
    auto out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  std::string string(const char* what) {
    const auto n = read<std::uint32_t>(what);
    const auto bytes = take(n, what);
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  [[nodiscard]] std::size_t position() const { return pos_; }
  [[nodiscard]] std::size_t remaining() const { return data_.size() - pos_; }

 private:
  std::span<const std::byte> data_;
  std::size_t pos_ = 0;
};

}  // namespace hcnn::io
