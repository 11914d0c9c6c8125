// hcnn/io/inflate.hpp — a small DEFLATE (RFC 1951) decoder, for gzip-compressed IDX files.
//
// stb_image's zlib decoder rejects valid streams with incomplete Huffman codes (Debian's
// Fashion-MNIST label files contain one: "bad huffman code"), and zlib is not among hcnn's
// dependencies, so hcnn inflates on its own. Canonical Huffman codes are decoded one bit at a
// time (simple and fast enough for dataset files); every read is bounds-checked, every code
// and distance validated, and errors throw InflateError.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace hcnn::io {

class InflateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

class BitReader {
 public:
  explicit BitReader(std::span<const std::byte> data) : data_(data) {}
  unsigned bits(int n) {  // n <= 16, least significant bit first
    unsigned value = 0;
    for (int i = 0; i < n; ++i) {
      if (byte_ == data_.size()) throw InflateError("the compressed data end early");
      value |= ((static_cast<unsigned>(data_[byte_]) >> bit_) & 1u) << i;
      if (++bit_ == 8) bit_ = 0, ++byte_;
    }
    return value;
  }
  void align() {
    if (bit_ != 0) bit_ = 0, ++byte_;
  }
  std::span<const std::byte> take(std::size_t n) {
    if (n > data_.size() - byte_) throw InflateError("a stored block runs past the end");
    auto out = data_.subspan(byte_, n);
    byte_ += n;
    return out;
  }
  [[nodiscard]] std::size_t consumed() const { return byte_ + (bit_ != 0); }

 private:
  std::span<const std::byte> data_;
  std::size_t byte_ = 0;
  int bit_ = 0;
};

// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huffman {
  std::array<std::uint16_t, 16> count{};
  std::vector<std::uint16_t> symbol;

  Huffman(const std::uint8_t* lengths, int n) : symbol(static_cast<std::size_t>(n)) {
    for (int s = 0; s < n; ++s) ++count[lengths[s]];
    count[0] = 0;
    int left = 1;  // over-subscribed sets are invalid; incomplete ones are allowed, as in zlib
    for (int len = 1; len < 16; ++len) {
      left = 2 * left - count[len];
      if (left < 0) throw InflateError("an over-subscribed Huffman code");
    }
    std::array<std::uint16_t, 16> offset{};
    for (int len = 1; len < 15; ++len) offset[len + 1] = offset[len] + count[len];
    for (int s = 0; s < n; ++s)
      if (lengths[s] != 0) symbol[offset[lengths[s]]++] = static_cast<std::uint16_t>(s);
  }

  int decode(BitReader& in) const {
    int code = 0, first = 0, index = 0;
    for (int len = 1; len < 16; ++len) {
      code |= static_cast<int>(in.bits(1));
      const int n = count[len];
      if (code - n < first) return symbol[static_cast<std::size_t>(index + (code - first))];
      index += n;
      first = (first + n) << 1;
      code <<= 1;
    }
    throw InflateError("an invalid Huffman code");
  }
};

inline constexpr std::uint16_t length_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                                  31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
inline constexpr std::uint8_t length_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                                  2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
inline constexpr std::uint16_t distance_base[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,
                                                    33,  49,  65,  97,  129, 193,  257,  385,  513,  769,
                                                    1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
inline constexpr std::uint8_t distance_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                                    6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

inline void inflate_block(BitReader& in, std::vector<std::uint8_t>& out, const Huffman& lengths, const Huffman& distances,
                          std::size_t limit) {
  while (true) {
    const int symbol = lengths.decode(in);
    if (symbol < 256) {
      if (out.size() >= limit) throw InflateError("the data inflate past the size limit");
      out.push_back(static_cast<std::uint8_t>(symbol));
    } else if (symbol == 256) {
      return;
    } else {
      const int l = symbol - 257;
      if (l >= 29) throw InflateError("an invalid length code");
      const std::size_t length = length_base[l] + in.bits(length_extra[l]);
      const int d = distances.decode(in);
      if (d >= 30) throw InflateError("an invalid distance code");
      const std::size_t distance = distance_base[d] + in.bits(distance_extra[d]);
      if (distance > out.size()) throw InflateError("a distance reaches before the start");
      if (out.size() + length > limit) throw InflateError("the data inflate past the size limit");
      const std::size_t from = out.size() - distance;
      for (std::size_t i = 0; i < length; ++i) out.push_back(out[from + i]);
    }
  }
}

}  // namespace detail

// Inflates a raw DEFLATE stream. `consumed` receives the number of input bytes used; output
// larger than `limit` bytes is refused (a guard against decompression bombs).
inline std::vector<std::uint8_t> inflate(std::span<const std::byte> data, std::size_t& consumed,
                                         std::size_t limit = std::size_t{1} << 32) {
  using namespace detail;
  BitReader in(data);
  std::vector<std::uint8_t> out;
  bool last = false;
  while (!last) {
    last = in.bits(1) != 0;
    const unsigned type = in.bits(2);
    if (type == 0) {
      in.align();
      const auto header = in.take(4);
      const unsigned length = static_cast<unsigned>(header[0]) | (static_cast<unsigned>(header[1]) << 8);
      const unsigned check = static_cast<unsigned>(header[2]) | (static_cast<unsigned>(header[3]) << 8);
      if ((length ^ 0xFFFFu) != check) throw InflateError("a stored block's length check fails");
      if (out.size() + length > limit) throw InflateError("the data inflate past the size limit");
      for (std::byte b : in.take(length)) out.push_back(static_cast<std::uint8_t>(b));
    } else if (type == 1) {
      static const auto fixed = [] {
        std::array<std::uint8_t, 288 + 30> l{};
        for (int s = 0; s < 288; ++s) l[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
        for (int s = 0; s < 30; ++s) l[288 + s] = 5;
        return std::pair{Huffman(l.data(), 288), Huffman(l.data() + 288, 30)};
      }();
      inflate_block(in, out, fixed.first, fixed.second, limit);
    } else if (type == 2) {
      const int nlen = static_cast<int>(in.bits(5)) + 257, ndist = static_cast<int>(in.bits(5)) + 1;
      const int ncode = static_cast<int>(in.bits(4)) + 4;
      if (nlen > 286 || ndist > 30) throw InflateError("too many length or distance codes");
      static constexpr int order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
      std::array<std::uint8_t, 19> code_lengths{};
      for (int i = 0; i < ncode; ++i) code_lengths[order[i]] = static_cast<std::uint8_t>(in.bits(3));
      const Huffman code_code(code_lengths.data(), 19);
      std::array<std::uint8_t, 316> lengths{};
      for (int i = 0; i < nlen + ndist;) {
        const int symbol = code_code.decode(in);
        if (symbol < 16) {
          lengths[i++] = static_cast<std::uint8_t>(symbol);
          continue;
        }
        std::uint8_t value = 0;
        int repeat;
        if (symbol == 16) {
          if (i == 0) throw InflateError("a repeat with no previous length");
          value = lengths[i - 1];
          repeat = 3 + static_cast<int>(in.bits(2));
        } else if (symbol == 17) {
          repeat = 3 + static_cast<int>(in.bits(3));
        } else {
          repeat = 11 + static_cast<int>(in.bits(7));
        }
        if (i + repeat > nlen + ndist) throw InflateError("code lengths overflow their table");
        while (repeat-- > 0) lengths[i++] = value;
      }
      if (lengths[256] == 0) throw InflateError("a block without an end code");
      inflate_block(in, out, Huffman(lengths.data(), nlen), Huffman(lengths.data() + nlen, ndist), limit);
    } else {
      throw InflateError("an invalid block type");
    }
  }
  consumed = in.consumed();
  return out;
}

}  // namespace hcnn::io
