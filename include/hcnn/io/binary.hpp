// hcnn/io/binary.hpp — little-endian binary reading with bounds checks, and CRC-32.
//
// The readers of hcnn's own formats (checkpoints, IDX) go through ByteReader, which never
// reads past its span and reports where a file ended early.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>

namespace hcnn::io {

// CRC-32 (IEEE 802.3, as zlib and gzip use), table-driven.
inline std::uint32_t crc32(std::span<const std::byte> data, std::uint32_t crc = 0) {
  static constexpr auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::byte b : data) crc = table[(crc ^ static_cast<std::uint8_t>(b)) & 0xFF] ^ (crc >> 8);
  return ~crc;
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
