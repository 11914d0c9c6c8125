// hcnn/core/type_list.hpp — the minimal type-list tools the static network generation needs.
#pragma once

#include <cstddef>
#include <tuple>

namespace hcnn {

template <class... Ts>
struct TypeList {
  static constexpr std::size_t size = sizeof...(Ts);
};

// The I-th type of a pack. std::tuple_element is a well-optimised intrinsic in libstdc++.
template <std::size_t I, class... Ts>
using type_at = std::tuple_element_t<I, std::tuple<Ts...>>;

}  // namespace hcnn
