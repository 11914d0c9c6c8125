// hcnn/architecture.hpp — a network type described as text: what summary() prints per layer,
// and the architecture string a checkpoint records so that a program (hcnn_classify) can tell
// which type to rebuild, and loading refuses a checkpoint of another architecture.
//
//   architecture<zoo::SmallD<10>>() == "3x64x64 | conv1 Conv<48> 11x11/2 +ReLU | pool1 MaxPool 3x3/2 | ..."
//   architecture<Combination<...>>() == "Combination{<base0> || <base1>} | <CLs>"
#pragma once

#include <array>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "average.hpp"
#include "combination.hpp"
#include "net.hpp"

namespace hcnn {

namespace detail {

// The string handling of the templates below, compiled once: they pass it what they know at
// compile time (kinds, widths, function pointers to the parts of other types) instead of each
// building strings of its own.

// "Conv<48> 11x11/2 +ReLU": kind, width (none when negative) and details.
inline std::string layer_description(std::string_view kind, int width, const std::string& details) {
  std::string type(kind);
  if (width >= 0) type += "<" + std::to_string(width) + ">";
  if (!details.empty()) type += (details.front() == ' ' ? "" : " ") + details;
  return type;
}

using Describe = std::string (*)();

// "<input> | <name> <description> | ..."
inline std::string join_layers(const std::string& input, std::span<const std::string> names,
                               std::span<const Describe> descriptions) {
  std::string text = input;
  for (std::size_t i = 0; i < names.size(); ++i) text += " | " + names[i] + " " + descriptions[i]();
  return text;
}

// "<base0> || <base1> || ..."
inline std::string join_bases(std::span<const Describe> bases) {
  std::string text;
  for (std::size_t i = 0; i < bases.size(); ++i) text += (i == 0 ? "" : " || ") + bases[i]();
  return text;
}

}  // namespace detail

// A layer as summary() shows it: kind, width and details ("Conv<48> 11x11/2 +ReLU").
template <class L>
std::string layer_description() {
  constexpr int width = [] {
    if constexpr (requires { L::out_channels; }) return int{L::out_channels};
    else if constexpr (requires { L::outputs; }) return int{L::outputs};
    else if constexpr (requires { L::classes; }) return int{L::classes};
    else return -1;
  }();
  return detail::layer_description(L::kind, width, L::describe());
}

template <class N>
std::string architecture() {
  if constexpr (is_combination<N> || is_average<N>) {
    static constexpr auto bases = []<std::size_t... I>(std::index_sequence<I...>) {
      return std::array<detail::Describe, N::base_count>{&architecture<typename N::template base<I>>...};
    }(std::make_index_sequence<N::base_count>{});
    if constexpr (is_combination<N>)
      return "Combination{" + detail::join_bases(bases) + "} | " + architecture<typename N::head>();
    else
      return "Average{" + detail::join_bases(bases) + "}";
  } else {
    static constexpr auto descriptions = []<std::size_t... I>(std::index_sequence<I...>) {
      return std::array<detail::Describe, N::depth>{&layer_description<typename N::template layer<I>>...};
    }(std::make_index_sequence<N::depth>{});
    return detail::join_layers(to_string(N::input_shape), layer_names<N>(), descriptions);
  }
}

}  // namespace hcnn
