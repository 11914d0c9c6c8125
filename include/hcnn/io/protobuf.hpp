// hcnn/io/protobuf.hpp — a small, strict reader of the protocol-buffers wire format.
//
// Just enough to walk Caffe's NetParameter: tags, varints (64-bit), fixed32/64 and
// length-delimited fields, over a byte span that is never copied. It exists because the C++
// protobuf library refuses messages over 64 MB by default and VGG-19's fc6 blob alone is 411
// MB. Every malformed input (a varint over 10 bytes, a length past the end, a group or unknown
// wire type, field number 0) throws ParseError with the byte offset; nothing reads out of
// bounds. Fuzzed by tests/fuzz/fuzz_caffemodel.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>

namespace hcnn::io::pb {

class ParseError : public std::runtime_error {
 public:
  ParseError(const std::string& what, std::size_t offset)
      : std::runtime_error(what + " at byte " + std::to_string(offset)), offset_(offset) {}
  [[nodiscard]] std::size_t offset() const { return offset_; }

 private:
  std::size_t offset_;
};

enum class WireType : std::uint8_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

struct Field {
  std::uint32_t number = 0;
  WireType type = WireType::varint;
  std::uint64_t value = 0;              // varint, fixed32 and fixed64 payloads
  std::span<const std::byte> bytes;     // length-delimited payload
  std::size_t offset = 0;               // absolute offset: of the payload if length-delimited, else of the tag
};

class Reader {
 public:
  // `base` is the absolute offset of data[0] in the file, so errors point into the file.
  explicit Reader(std::span<const std::byte> data, std::size_t base = 0) : data_(data), base_(base) {}

  // Reads the next field; false at the end of the message.
  bool next(Field& field) {
    if (pos_ == data_.size()) return false;
    const std::size_t start = pos_;
    const std::uint64_t key = varint();
    const std::uint64_t number = key >> 3;
    if (number == 0 || number > 0x1FFFFFFF) throw ParseError("invalid field number " + std::to_string(number), base_ + start);
    field.number = static_cast<std::uint32_t>(number);
    field.offset = base_ + start;
    switch (key & 7) {
      case 0:
        field.type = WireType::varint;
        field.value = varint();
        break;
      case 1:
        field.type = WireType::fixed64;
        field.value = fixed<std::uint64_t>();
        break;
      case 2: {
        field.type = WireType::length_delimited;
        const std::uint64_t length = varint();
        if (length > data_.size() - pos_)
          throw ParseError("a length of " + std::to_string(length) + " bytes runs past the end (" +
                               std::to_string(data_.size() - pos_) + " bytes left)",
                           base_ + pos_);
        field.offset = base_ + pos_;
        field.bytes = data_.subspan(pos_, static_cast<std::size_t>(length));
        pos_ += static_cast<std::size_t>(length);
        break;
      }
      case 5:
        field.type = WireType::fixed32;
        field.value = fixed<std::uint32_t>();
        break;
      default:
        throw ParseError("unsupported wire type " + std::to_string(key & 7), base_ + start);
    }
    return true;
  }

  // Reads a varint from the current position (packed repeated fields are runs of them).
  std::uint64_t varint() {
    std::uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ == data_.size()) throw ParseError("truncated varint", base_ + pos_);
      const auto byte = static_cast<std::uint8_t>(data_[pos_++]);
      if (shift == 63 && byte > 1) throw ParseError("varint overflows 64 bits", base_ + pos_ - 1);
      result |= std::uint64_t{byte & 0x7Fu} << shift;
      if ((byte & 0x80) == 0) return result;
    }
    throw ParseError("varint longer than 10 bytes", base_ + pos_);
  }

  [[nodiscard]] bool done() const { return pos_ == data_.size(); }

 private:
  template <class U>
  U fixed() {
    if (data_.size() - pos_ < sizeof(U)) throw ParseError("truncated fixed-width field", base_ + pos_);
    U value;
    std::memcpy(&value, data_.data() + pos_, sizeof(U));  // little-endian, unaligned
    pos_ += sizeof(U);
    return value;
  }

  std::span<const std::byte> data_;
  std::size_t base_;
  std::size_t pos_ = 0;
};

// A field's payload checked to be of one wire type.
inline void expect(const Field& field, WireType type, const char* what) {
  if (field.type != type)
    throw ParseError(std::string(what) + " (field " + std::to_string(field.number) + ") has the wrong wire type " +
                         std::to_string(static_cast<int>(field.type)),
                     field.offset);
}

}  // namespace hcnn::io::pb
