// hcnn/architecture.hpp — a network type described as text: what summary() prints per layer,
// and the architecture string a checkpoint records so that a program (hcnn_classify) can tell
// which type to rebuild, and loading refuses a checkpoint of another architecture.
//
//   architecture<zoo::SmallD<10>>() == "3x64x64 | conv1 Conv<48> 11x11/2 +ReLU | pool1 MaxPool 3x3/2 | ..."
//   architecture<Combination<...>>() == "Combination{<base0> || <base1>} | <CLs>"
#pragma once

#include <string>
#include <utility>

#include "average.hpp"
#include "combination.hpp"
#include "net.hpp"

namespace hcnn {

// A layer as summary() shows it: kind, width and details ("Conv<48> 11x11/2 +ReLU").
template <class L>
std::string layer_description() {
  std::string type = std::string(L::kind);
  if constexpr (requires { L::out_channels; }) type += "<" + std::to_string(L::out_channels) + ">";
  if constexpr (requires { L::outputs; }) type += "<" + std::to_string(L::outputs) + ">";
  if constexpr (requires { L::classes; }) type += "<" + std::to_string(L::classes) + ">";
  const std::string details = L::describe();
  if (!details.empty()) type += (details.front() == ' ' ? "" : " ") + details;
  return type;
}

template <class N>
std::string architecture() {
  if constexpr (is_combination<N>) {
    std::string bases;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((bases += (I == 0 ? "" : " || ") + architecture<typename N::template base<I>>()), ...);
    }(std::make_index_sequence<N::base_count>{});
    return "Combination{" + bases + "} | " + architecture<typename N::head>();
  } else if constexpr (is_average<N>) {
    std::string bases;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((bases += (I == 0 ? "" : " || ") + architecture<typename N::template base<I>>()), ...);
    }(std::make_index_sequence<N::base_count>{});
    return "Average{" + bases + "}";
  } else {
    const auto names = layer_names<N>();
    std::string text = to_string(N::input_shape);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((text += " | " + names[I] + " " + layer_description<typename N::template layer<I>>()), ...);
    }(std::make_index_sequence<N::depth>{});
    return text;
  }
}

}  // namespace hcnn
