// hcnn/core/finite.hpp — finding NaN and infinity, so that they are refused where they enter
// (a model file, a checkpoint, a training step) instead of surfacing as NaN probabilities.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include "buffer.hpp"

namespace hcnn {

// Whether a value is neither NaN nor infinite; through double, so that storage types without
// a std::isfinite of their own (the Cuda backend's bf16) are checked too.
template <class T>
[[nodiscard]] bool is_finite(T value) {
  return std::isfinite(static_cast<double>(value));
}

// The index of the first NaN or infinity in `values`, if any.
template <class T>
[[nodiscard]] std::optional<std::size_t> first_non_finite(std::span<const T> values) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!is_finite(values[i])) return i;
  return std::nullopt;
}

// Value i of T values stored at any alignment (as in a mapped file).
template <class T>
[[nodiscard]] T value_at(std::span<const std::byte> bytes, std::size_t i) {
  T value;
  std::memcpy(&value, bytes.data() + i * sizeof(T), sizeof(T));
  return value;
}

// first_non_finite for T values stored at any alignment.
template <class T>
[[nodiscard]] std::optional<std::size_t> first_non_finite_bytes(std::span<const std::byte> bytes) {
  for (std::size_t i = 0; i < bytes.size() / sizeof(T); ++i)
    if (!is_finite(value_at<T>(bytes, i))) return i;
  return std::nullopt;
}

// "nan", "inf" or "-inf", for messages.
[[nodiscard]] inline std::string non_finite_name(double value) {
  return std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
}

// "holds nan at index 17", for messages.
[[nodiscard]] inline std::string non_finite_text(double value, std::size_t index) {
  return "holds " + non_finite_name(value) + " at index " + std::to_string(index);
}

// The first of a model's parameter blobs (a list of NamedParam) that holds NaN or infinity, as
// "layer 'fc6' weight holds nan at index 17"; nothing when all are finite.
template <class NamedParams>
[[nodiscard]] std::optional<std::string> non_finite_parameter(const NamedParams& params) {
  for (const auto& named : params) {  // not a structured binding: clang 14 cannot capture one
    auto found = read_on_host(named.param->value, [&](auto values) -> std::optional<std::string> {
      if (const auto at = first_non_finite(values))
        return "layer '" + named.layer + "' " + named.param->name + " " + non_finite_text(double(values[*at]), *at);
      return std::nullopt;
    });
    if (found) return found;
  }
  return std::nullopt;
}

}  // namespace hcnn
