// hcnn/average.hpp — Average<Bases...>: the paper's [A,B]+avg baseline, the mean of the bases'
// softmax outputs.
//
// Every base is a whole classifier (ending in Softmax<N>, the same N for all). Bases with
// different input sizes each take the centre crop of their own size from the shared input,
// which is the largest of them, as in Combination. An Average is not trained as one: train
// (or import) each base, then average. Its blobs are the bases' ("base<i>/<layer>"), so a
// checkpoint holds the whole ensemble.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <cstdint>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "combination.hpp"

namespace hcnn {

template <NetSpec... Bases>
struct Average {
  static_assert(sizeof...(Bases) >= 2, "Average: needs at least two base networks");
  static_assert((requires { Bases::template layer<Bases::depth - 1>::classes; } && ...),
                "Average: every base must end in a Softmax<N> classifier");
  static constexpr std::array<int, sizeof...(Bases)> classes{Bases::output_shape.c...};
  static_assert(((Bases::output_shape.c == classes[0]) && ...), "Average: every base must have the same number of classes");
  static_assert(detail::same_channels<Bases...>(), "Average: every base must take the same number of input channels");

  static constexpr std::size_t base_count = sizeof...(Bases);
  static constexpr Shape input_shape = detail::shared_input<Bases...>();
  static constexpr Shape output_shape = {classes[0], 1, 1};
  template <std::size_t I>
  using base = type_at<I, Bases...>;
};

template <class A>
inline constexpr bool is_average = false;
template <class... Bases>
inline constexpr bool is_average<Average<Bases...>> = true;

template <class... Nets, class Backend, class T>
class Model<Average<Nets...>, Backend, T> {
 public:
  using net = Average<Nets...>;
  using backend = Backend;
  using value_type = T;
  static constexpr std::size_t base_count = net::base_count;
  static constexpr Shape input_shape = net::input_shape;
  static constexpr Shape output_shape = net::output_shape;
  static constexpr bool is_classifier = true;
  using Bases = std::tuple<Model<Nets, Backend, T>...>;
  template <std::size_t I>
  using BaseModel = std::tuple_element_t<I, Bases>;

  explicit Model(std::uint64_t seed = 0, const Init& init = {}) { initialize(seed, init); }
  void initialize(std::uint64_t seed, const Init& init = {}) {
    for_each_base([&]<std::size_t I>(auto& base) { base.initialize(Rng(seed, 1000 + I).next(), init); });
  }

  template <std::size_t I>
  [[nodiscard]] BaseModel<I>& base() {
    return std::get<I>(bases_);
  }

  const Tensor<T, Backend>& forward(const Tensor<T, Backend>& x, Mode mode = Mode::test) {
    if (x.shape() != input_shape)
      throw ShapeError("Average: the input is " + to_string(x.shape()) + " per sample, but the average expects " +
                       to_string(input_shape) + " (the largest of its bases' inputs)");
    return forward(x.data(), x.batch(), mode);
  }
  const Tensor<T, Backend>& forward(const T* x, int n, Mode mode = Mode::test) {
    output_.resize(n, output_shape);
    output_.fill(T{0});
    for_each_base([&]<std::size_t I>(auto& base) {
      const auto& p = base.forward_with(n, mode, [&](T* input) {
        detail::centre_crop<input_shape, BaseModel<I>::input_shape>(x, n, input);
      });
      for (std::size_t i = 0; i < output_.size(); ++i) output_[i] += p[i] / T(base_count);
    });
    return output_;
  }
  [[nodiscard]] const Tensor<T, Backend>& output() const { return output_; }
  [[nodiscard]] int batch() const { return output_.batch(); }

  // Mean cross-entropy of the averaged probabilities, clamped as Model::loss clamps.
  [[nodiscard]] double loss(std::span<const int> labels) const {
    if (labels.size() != static_cast<std::size_t>(output_.batch()))
      throw ShapeError("Average: " + std::to_string(labels.size()) + " labels for a batch of " +
                       std::to_string(output_.batch()));
    double sum = 0;
    for (std::size_t s = 0; s < labels.size(); ++s)
      sum -= std::log(std::max(double(output_[s * output_shape.c + labels[s]]), double(std::numeric_limits<float>::min())));
    return sum / double(labels.size());
  }

  std::vector<NamedParam<T, Backend>> parameters() {
    std::vector<NamedParam<T, Backend>> all;
    for_each_base([&]<std::size_t I>(auto& base) {
      detail::append_prefixed(all, "base" + std::to_string(I) + "/", [&] { return base.parameters(); });
    });
    return all;
  }
  std::vector<NamedStream> random_streams() {
    std::vector<NamedStream> all;
    for_each_base([&]<std::size_t I>(auto& base) {
      detail::append_prefixed(all, "base" + std::to_string(I) + "/", [&] { return base.random_streams(); });
    });
    return all;
  }

  template <class F>
  void for_each_base(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f.template operator()<I>(std::get<I>(bases_)), ...);
    }(std::make_index_sequence<base_count>{});
  }

 private:
  Bases bases_;
  Tensor<T, Backend> output_;
};

}  // namespace hcnn
