// hcnn/train/strategy.hpp — how deep training goes: the fine-tuning strategies of the paper's
// Table 4 as presets, and the one call that applies them.
//
// A Strategy counts trainable weight layers from the top: of the combination layers (or of a
// plain network) and of each base. apply_strategy() turns the counts into
// Model::freeze_below on every part, which sets both the solver's view (frozen blobs are not
// updated) and the backward pass's depth (frozen layers compute no gradient at all): one
// mechanism, never two to keep in step.
#pragma once

#include <cstddef>
#include <string_view>

#include "../average.hpp"
#include "../combination.hpp"
#include "../model.hpp"

namespace hcnn {

struct Strategy {
  static constexpr int all = -1;
  int top_weight_layers = all;  // trainable weight layers at the top of the CLs (or of a plain net)
  int base_weight_layers = 0;   // trainable weight layers at the top of each base
  std::string_view name = "";
};

namespace strategy {
// Table 4's rows. For a plain network, combination_layers trains everything (it has no bases).
inline constexpr Strategy softmax_only{1, 0, "softmax only"};
inline constexpr Strategy combination_layers{Strategy::all, 0, "softmax + fc-alpha"};
inline constexpr Strategy base_top_layers{Strategy::all, 1, "into the bases' top layers"};
inline constexpr Strategy whole_network{Strategy::all, Strategy::all, "whole network"};
}  // namespace strategy

template <class M>
void apply_strategy(M& model, const Strategy& s) {
  using N = typename M::net;
  if constexpr (is_combination<N>) {
    apply_strategy(model.head(), {s.top_weight_layers, 0, s.name});
    model.for_each_base([&]<std::size_t I>(auto& base) { apply_strategy(base, {s.base_weight_layers, 0, s.name}); });
  } else if constexpr (is_average<N>) {
    model.for_each_base([&]<std::size_t I>(auto& base) { apply_strategy(base, s); });
  } else {
    model.freeze_below(s.top_weight_layers < 0 ? 0 : top_weight_layer_index<N>(std::size_t(s.top_weight_layers)));
  }
}

}  // namespace hcnn
