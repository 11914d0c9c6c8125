// hcnn/summary.hpp — a printed table of a network: per layer its name, type, output shape,
// parameters and multiply-adds, and the totals. A Combination prints each kept base, the
// concatenation width and the combination layers; an Average its bases.
#pragma once

#include <cstdint>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>

#include "architecture.hpp"

namespace hcnn {

// 60965224 -> "60,965,224"
// Built front to back (inserting the commas set off a false -Wstringop-overflow in GCC 12), from
// the magnitude as unsigned, so that the most negative value does not overflow.
inline std::string with_commas(std::int64_t value) {
  const std::uint64_t magnitude = value < 0 ? 0 - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
  const std::string digits = std::to_string(magnitude);
  std::string text = value < 0 ? "-" : "";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) text += ',';
    text += digits[i];
  }
  return text;
}

template <NetSpec N>
void summary(std::ostream& os, std::string_view title = "") {
  const auto names = layer_names<N>();
  constexpr int name_w = 10, type_w = 36, shape_w = 14, num_w = 16;
  if (!title.empty()) os << title << "\n";
  os << std::left << std::setw(name_w) << "layer" << std::setw(type_w) << "type" << std::setw(shape_w) << "output"
     << std::right << std::setw(num_w) << "parameters" << std::setw(num_w) << "multiply-adds" << "\n";
  os << std::left << std::setw(name_w) << "input" << std::setw(type_w) << "Input" << std::setw(shape_w)
     << to_string(N::input_shape) << "\n";
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    auto row = [&]<std::size_t J>() {
      using L = typename N::template layer<J>;
      constexpr Shape in = N::template shape_before<J>();
      const std::string type = layer_description<L>();
      os << std::left << std::setw(name_w) << names[J] << std::setw(type_w) << type << std::setw(shape_w)
         << to_string(N::template shape_before<J + 1>()) << std::right << std::setw(num_w)
         << (L::template param_count<in>() ? with_commas(L::template param_count<in>()) : "") << std::setw(num_w)
         << (L::template macs<in>() ? with_commas(L::template macs<in>()) : "") << "\n";
    };
    (row.template operator()<I>(), ...);
  }(std::make_index_sequence<N::depth>{});
  os << std::left << std::setw(name_w + type_w + shape_w) << ("total: " + std::to_string(N::depth) + " layers, " +
                                                             std::to_string(N::weight_layers) + " weight layers")
     << std::right << std::setw(num_w) << with_commas(param_count<N>()) << std::setw(num_w)
     << with_commas(mac_count<N>()) << "\n";
}

// The bases as kept, the concatenation and the CLs, and the totals of them all.
template <class C>
  requires is_combination<C>
void summary(std::ostream& os, std::string_view title = "") {
  if (!title.empty()) os << title << "\n";
  std::int64_t params = param_count<typename C::head>(), macs = mac_count<typename C::head>();
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    auto one = [&]<std::size_t J>() {
      using B = typename C::template base<J>;
      summary<B>(os, "base" + std::to_string(J) + " (input " + to_string(B::input_shape) + ", top " +
                         std::to_string(C::template dropped<J>) + " weight layers dropped, features " +
                         to_string(B::output_shape) + "):");
      params += param_count<B>();
      macs += mac_count<B>();
      os << "\n";
    };
    (one.template operator()<I>(), ...);
  }(std::make_index_sequence<C::base_count>{});
  os << "concatenation: " << with_commas(C::concat_width) << " features (bases flattened in C,H,W order)\n\n";
  summary<typename C::head>(os, "combination layers (cl):");
  os << "\ncombination total: " << C::base_count << " bases, " << C::weight_layers << " weight layers, "
     << with_commas(params) << " parameters, " << with_commas(macs) << " multiply-adds\n";
}

template <class A>
  requires is_average<A>
void summary(std::ostream& os, std::string_view title = "") {
  if (!title.empty()) os << title << "\n";
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((summary<typename A::template base<I>>(os, "base" + std::to_string(I) + ":"), os << "\n"), ...);
  }(std::make_index_sequence<A::base_count>{});
  os << "average of " << A::base_count << " softmax outputs (" << A::output_shape.c << " classes)\n";
}

template <class N>
std::string summary(std::string_view title = "") {
  std::ostringstream os;
  summary<N>(os, title);
  return os.str();
}

}  // namespace hcnn
