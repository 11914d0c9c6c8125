// hcnn/layers/activation.hpp — the activations that Conv and FC carry.
//
// Caffe follows every convolution and hidden inner product with an in-place ReLU; hcnn fuses
// it into the layer (Conv<..., Act = ReLU>). Identity opts out.
#pragma once

#include <concepts>
#include <string>
#include <string_view>

namespace hcnn {

struct ReLU {
  static constexpr std::string_view name = "ReLU";
};

struct Identity {
  static constexpr std::string_view name = "Identity";
};

template <class A>
concept Activation = std::same_as<A, ReLU> || std::same_as<A, Identity>;

// A fused activation in a layer's description: " +ReLU", nothing for Identity.
inline std::string activation_text(std::string_view name) {
  return name == Identity::name ? std::string{} : " +" + std::string(name);
}

}  // namespace hcnn
