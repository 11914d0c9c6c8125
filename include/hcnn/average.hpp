// hcnn/average.hpp — Average<Bases...>: the paper's [A,B]+avg baseline, the mean of the bases'
// softmax outputs.
//
// Every base is a whole classifier (ending in Softmax<N>, the same N for all). Bases with
// different input sizes each take the centre crop of their own size from the shared input,
// which is the largest of them, as in Combination. An Average is not trained as one: train
// (or import) each base, then average. Its blobs are the bases' ("base<i>/<layer>"), so a
// checkpoint holds the whole ensemble.
#pragma once

#include <array>
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
  using Bases = detail::BaseModels<input_shape, Backend, T, Nets...>;
  template <std::size_t I>
  using BaseModel = typename Bases::template Base<I>;

  explicit Model(std::uint64_t seed = 0, const Init& init = {}) { initialize(seed, init); }
  void initialize(std::uint64_t seed, const Init& init = {}) { bases_.initialize(seed, init); }

  template <std::size_t I>
  [[nodiscard]] BaseModel<I>& base() {
    return bases_.template get<I>();
  }

  const Tensor<T, Backend>& forward(const Tensor<T, Backend>& x, Mode mode = Mode::test) {
    Bases::check_input(x.shape(), "Average");
    return forward(x.data(), x.batch(), mode);
  }
  const Tensor<T, Backend>& forward(const T* x, int n, Mode mode = Mode::test) {
    bases_.forward(x, n, mode);
    output_.resize(n, output_shape);
    output_.buffer().fill(T{0});
    bases_.for_each([&]<std::size_t I>(const auto& base) {
      add_part_of_mean(Backend{}, base.output().data(), int(base_count), output_.data(), output_.size());
    });
    return output_;
  }
  [[nodiscard]] const Tensor<T, Backend>& output() const { return output_; }
  [[nodiscard]] int batch() const { return output_.batch(); }

  // Mean cross-entropy of the averaged probabilities.
  [[nodiscard]] double loss(std::span<const int> labels) const {
    check_labels(labels, output_.batch(), output_shape.c, "Average");
    return read_on_host(output_.buffer(),
                        [&](std::span<const T> p) { return mean_cross_entropy(p.data(), output_shape.c, labels); });
  }

  std::vector<NamedParam<T, Backend>> parameters() {
    std::vector<NamedParam<T, Backend>> all;
    bases_.append_parameters(all);
    return all;
  }
  std::vector<NamedStream> random_streams() {
    std::vector<NamedStream> all;
    bases_.append_streams(all);
    return all;
  }

  template <class F>
  void for_each_base(F&& f) {
    bases_.for_each(f);
  }

 private:
  Bases bases_;
  Tensor<T, Backend> output_;
};

}  // namespace hcnn
