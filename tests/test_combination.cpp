// Combination, Drop and Average: the truncation rule and shapes at compile time and at run
// time, centre crops, unique names, gradients through the concatenation, the freezing
// strategies, the overwrite contract of backward, cached features, and the average.
#include "gradient_check.hpp"

#include <set>
#include <sstream>

#include "parameter_values.hpp"
#include "temp_dir.hpp"

using namespace hcnn;

namespace {

// Two small bases of different architectures and input sizes (9x9 and 7x7), with dropout at
// their tops and a BatchNorm in one.
using A = Net<Input<2, 9, 9>, Conv<4, 3>, MaxPool<2, 2>, FC<6>, Dropout<0.5f>, FC<5>, Dropout<0.5f>, Softmax<3>>;
using B = Net<Input<2, 7, 7>, Conv<3, 3, 1, 1, 1, Identity>, BatchNorm<ReLU>, MaxPool<2, 2>, FC<5>, Dropout<0.5f>, FC<4>,
              Dropout<0.5f>, Softmax<3>>;
using Joint = Combination<A, B, FC<6>, Softmax<4>>;

template <class M>
Tensor<typename M::value_type> random_input(int n, std::uint64_t seed) {
  Tensor<typename M::value_type> x(n, M::input_shape);
  Rng rng(seed);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = typename M::value_type(rng.normal());
  return x;
}

// A model whose BatchNorm statistics are not the initial zeros.
template <class M>
void warm_up(M& model) {
  auto x = random_input<M>(5, 99);
  model.forward(x, Mode::train);
}

}  // namespace

TEST_CASE("The paper's architectures have the paper's shapes", "[combination]") {
  using D = zoo::CaffeNet<1000>;
  using VD = zoo::VGG19<1000>;
  using Standard = Combination<D, VD, FC<4096>, Softmax<67>>;  // [D,VD]+2CL
  STATIC_REQUIRE(Standard::cl_weight_layers == 2);
  STATIC_REQUIRE(Standard::base<0>::depth == 12);  // conv1 ... fc6, drop6
  STATIC_REQUIRE(Standard::base<1>::depth == 23);  // conv1_1 ... fc6, drop6
  STATIC_REQUIRE(Standard::base<0>::output_shape == Shape{4096, 1, 1});
  STATIC_REQUIRE(Standard::concat_width == 8192);
  STATIC_REQUIRE(Standard::input_shape == Shape{3, 227, 227});
  STATIC_REQUIRE(Standard::output_shape == Shape{67, 1, 1});
  // The paper's rule keeps each path's depth: 6 + 2 = D's 8 weight layers, 17 + 2 = VD's 19.
  STATIC_REQUIRE(Standard::base<0>::weight_layers + Standard::head::weight_layers == 8);
  STATIC_REQUIRE(Standard::base<1>::weight_layers + Standard::head::weight_layers == 19);
  STATIC_REQUIRE(param_count<Standard::head>() == 8192LL * 4096 + 4096 + 4096LL * 67 + 67);
  CHECK(layer_names<Standard::base<1>>().back() == "drop6");
  CHECK(layer_names<Standard::base<1>>()[0] == "conv1_1");

  // Fig. 5c: a third CL between fcα and the softmax, the bases cut as in 2CL (deeper in all).
  using Fig5c = Combination<Drop<D, 2>, Drop<VD, 2>, FC<4096>, FC<6144>, Softmax<67>>;
  STATIC_REQUIRE(Fig5c::base<0>::depth == 12);
  STATIC_REQUIRE(Fig5c::concat_width == 8192);
  STATIC_REQUIRE(Fig5c::base<0>::weight_layers + Fig5c::head::weight_layers == 9);
  using Fig5d = Combination<Drop<D, 3>, Drop<VD, 3>, FC<4096>, FC<4096>, Softmax<67>>;  // after the last conv
  STATIC_REQUIRE(Fig5d::base<0>::output_shape == Shape{256, 6, 6});
  STATIC_REQUIRE(Fig5d::base<1>::output_shape == Shape{512, 7, 7});
  STATIC_REQUIRE(Fig5d::concat_width == 256 * 36 + 512 * 49);
  // ... which is also the default rule for three CLs: the same depth as the standard one.
  using ThreeCL = Combination<D, VD, FC<4096>, FC<4096>, Softmax<67>>;
  STATIC_REQUIRE(std::is_same_v<ThreeCL::base<0>, Fig5d::base<0>>);
  using Homogeneous = Combination<D, D, FC<4096>, Softmax<67>>;
  STATIC_REQUIRE(Homogeneous::concat_width == 8192);
  using Alpha6144 = Combination<D, VD, FC<6144>, Softmax<67>>;
  STATIC_REQUIRE(param_count<Alpha6144::head>() == 8192LL * 6144 + 6144 + 6144LL * 67 + 67);
  using Avg = Average<D, VD>;
  STATIC_REQUIRE(Avg::input_shape == Shape{3, 227, 227});
  STATIC_REQUIRE(Avg::output_shape == Shape{1000, 1, 1});
  // BatchNorm is not a weight layer: dropped with the weight layer it follows.
  using WithBN = Combination<zoo::SmallD<10>, zoo::SmallVDBN<10>, FC<64>, Softmax<5>>;
  STATIC_REQUIRE(WithBN::base<1>::output_shape == Shape{512, 1, 1});
  STATIC_REQUIRE(WithBN::concat_width == 1024);
}

TEST_CASE("Full-size combinations and the average run", "[combination][slow]") {
  using D = zoo::CaffeNet<1000>;
  using VD = zoo::VGG19<1000>;
  auto run = [&]<class C>() {
    auto model = std::make_unique<Model<C>>(1);
    const auto x = random_input<Model<C>>(1, 3);
    const auto& p = model->forward(x);
    double sum = 0;
    for (std::size_t i = 0; i < p.size(); ++i) sum += p[i];
    CHECK(sum == Approx(1.0).epsilon(1e-4));
  };
  run.operator()<Combination<D, VD, FC<4096>, Softmax<67>>>();
  run.operator()<Combination<Drop<D, 2>, Drop<VD, 2>, FC<4096>, FC<4096>, Softmax<67>>>();
  run.operator()<Combination<Drop<D, 3>, Drop<VD, 3>, FC<4096>, FC<4096>, Softmax<67>>>();
  run.operator()<Combination<D, D, FC<4096>, Softmax<67>>>();
  run.operator()<Average<D, VD>>();
}

TEST_CASE("Combination's run-time shapes, names, crops and summary", "[combination]") {
  Model<Joint> model(3);
  const auto x = random_input<Model<Joint>>(2, 4);
  const auto& p = model.forward(x);
  CHECK(p.shape() == Shape{4, 1, 1});
  CHECK(model.base<0>().output().shape() == Shape{6, 1, 1});
  CHECK(model.base<1>().output().shape() == Shape{5, 1, 1});

  // Base 1 saw the centre 7x7 crop of the 9x9 input.
  Tensor<float> crop(2, B::input_shape);
  for (int s = 0; s < 2; ++s)
    for (int c = 0; c < 2; ++c)
      for (int h = 0; h < 7; ++h)
        for (int w = 0; w < 7; ++w) crop(s, c, h, w) = x(s, c, h + 1, w + 1);
  auto alone = model.base<1>();
  const auto& direct = alone.forward(crop);
  for (std::size_t i = 0; i < direct.size(); ++i) CHECK(direct[i] == model.base<1>().output()[i]);

  // The CLs saw [base0 | base1] per sample.
  Tensor<float> concat(2, Joint::head::input_shape);
  for (int s = 0; s < 2; ++s) {
    for (int i = 0; i < 6; ++i) concat(s, i, 0, 0) = model.base<0>().output()(s, i, 0, 0);
    for (int i = 0; i < 5; ++i) concat(s, 6 + i, 0, 0) = model.base<1>().output()(s, i, 0, 0);
  }
  auto head = model.head();
  const auto& from_concat = head.forward(concat);
  for (std::size_t i = 0; i < p.size(); ++i) CHECK(from_concat[i] == p[i]);

  std::set<std::string> names;
  for (const auto& [layer, param] : model.parameters()) CHECK(names.insert(layer + "." + param->name).second);
  CHECK(names.count("base0/conv1.weight") == 1);
  CHECK(names.count("base1/bn1.mean") == 1);
  CHECK(names.count("cl/fc1.weight") == 1);

  const std::string table = summary<Joint>();
  CHECK_THAT(table, Catch::Contains("concatenation: 11 features"));
  CHECK_THAT(table, Catch::Contains("base1 (input 2x7x7, top 2 weight layers dropped"));

  Tensor<float> wrong(1, B::input_shape);
  CHECK_THROWS_WITH(model.forward(wrong), Catch::Contains("expects 2x9x9"));
}

TEST_CASE("A base of a Combination imports Caffe weights by its own names", "[combination][caffemodel]") {
  testing::TempDir dir;
  Model<A> trained(8);
  export_caffemodel(trained, dir / "a.caffemodel");
  Model<Joint> model(1);
  import_caffemodel(model.base<0>(), dir / "a.caffemodel");  // fc6's top layers are not in the base: ignored
  auto kept = model.base<0>().parameters();
  auto full = trained.parameters();
  for (std::size_t i = 0; i < kept.size(); ++i)
    CHECK(std::vector<float>(kept[i].param->value.begin(), kept[i].param->value.end()) ==
          std::vector<float>(full[i].param->value.begin(), full[i].param->value.end()));
}

TEST_CASE("Gradients through the concatenation into the bases, by finite differences", "[gradient][combination]") {
  using M = Model<Joint, Cpu, double>;
  M model(5, Init{.weights = Filler::msra(), .classifier = Filler::gaussian(0.3f), .bias = 0.1f});
  warm_up(model);
  apply_strategy(model, strategy::base_top_layers);  // CLs + fc6 of A, fc4 (its top kept FC) of B
  const auto x = random_input<M>(3, 6);
  const std::vector<int> labels{3, 0, 2};
  M analytic = model;
  analytic.forward(x, Mode::train);
  analytic.backward(labels);
  auto loss = [&] {
    M copy = model;  // the same dropout masks and BatchNorm state each time
    copy.forward(x, Mode::train);
    return copy.loss(labels);
  };
  auto params = model.parameters();
  auto grads = analytic.parameters();
  int checked = 0;
  for (std::size_t p = 0; p < params.size(); ++p) {
    if (!params[p].param->trained()) continue;
    for (std::size_t i = 0; i < params[p].param->size(); i += 2) {
      INFO(params[p].layer << "." << params[p].param->name << "[" << i << "]");
      CHECK(testing::relative_error(testing::central_difference(params[p].param->value[i], loss),
                                    grads[p].param->grad[i]) < 1e-6);
      ++checked;
    }
  }
  CHECK(checked > 40);
  // The trained base layers are the top kept weight layers only.
  CHECK(model.base<0>().trainable_from() == 2);
  CHECK(model.base<1>().trainable_from() == 3);
}

TEST_CASE("Each strategy freezes exactly what it says, and frozen layers compute nothing", "[combination][strategy]") {
  struct Case {
    Strategy strategy;
    std::size_t head_from, base0_from, base1_from;
  };
  for (const Case& c : {Case{strategy::softmax_only, 1, 4, 5}, Case{strategy::combination_layers, 0, 4, 5},
                        Case{strategy::base_top_layers, 0, 2, 3}, Case{strategy::whole_network, 0, 0, 0}}) {
    INFO(c.strategy.name);
    Model<Joint> model(2);
    warm_up(model);
    Trainer trainer(model, Sgd{.lr = 0.1f}, c.strategy);
    CHECK(model.head().trainable_from() == c.head_from);
    CHECK(model.base<0>().trainable_from() == c.base0_from);
    CHECK(model.base<1>().trainable_from() == c.base1_from);
    auto params = model.parameters();
    for (auto& [layer, p] : params)
      if (p->learnable) p->grad.fill(42.0f);
    std::vector<std::vector<float>> before;
    for (auto& [layer, p] : params) before.emplace_back(p->value.begin(), p->value.end());
    const auto x = random_input<Model<Joint>>(4, 7);
    const std::vector<int> labels{0, 1, 2, 3};
    for (int step = 0; step < 2; ++step) {
      model.forward(x, Mode::train);
      model.backward(labels);
      trainer.solver().step(params);
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      const auto& p = *params[i].param;
      INFO(params[i].layer << "." << p.name);
      const std::vector<float> now(p.value.begin(), p.value.end());
      if (!p.learnable) continue;
      if (p.frozen) {
        CHECK(now == before[i]);  // bit-identical
        CHECK(std::all_of(p.grad.begin(), p.grad.end(), [](float g) { return g == 42.0f; }));  // never computed
      } else {
        CHECK(now != before[i]);
      }
    }
  }
}

TEST_CASE("A frozen BatchNorm neither uses nor updates batch statistics", "[batchnorm][strategy]") {
  Model<B> model(3);
  warm_up(model);
  const auto before = testing::parameter_values(model);
  model.freeze_below(3);
  const auto x = random_input<Model<B>>(4, 1);
  Model<B> reference = model;
  model.forward(x, Mode::train);
  CHECK(testing::parameter_values(model) == before);
  reference.forward(x, Mode::test);
  const auto& trained = model.activation<1>();  // BatchNorm's output (the dropout above does drop)
  const auto& tested = reference.activation<1>();
  for (std::size_t i = 0; i < trained.size(); ++i) CHECK(trained[i] == tested[i]);
}

TEST_CASE("Backward overwrites parameter gradients: twice gives the same, not twice it", "[model][combination]") {
  const auto x = random_input<Model<Joint>>(3, 2);
  const std::vector<int> labels{1, 2, 3};
  auto grads_of = [](auto& m) {
    std::vector<float> all;
    for (auto& [layer, p] : m.parameters())
      if (p->learnable) all.insert(all.end(), p->grad.begin(), p->grad.end());
    return all;
  };
  Model<Joint> model(4);
  apply_strategy(model, strategy::whole_network);
  model.forward(x, Mode::test);
  model.backward(labels);
  const auto once = grads_of(model);
  model.forward(x, Mode::test);
  model.backward(labels);
  CHECK(grads_of(model) == once);

  Model<A> net(4);
  const auto xa = random_input<Model<A>>(3, 2);
  net.forward(xa, Mode::test);
  net.backward(std::vector<int>{0, 1, 2});
  const auto first = grads_of(net);
  net.forward(xa, Mode::test);
  net.backward(std::vector<int>{0, 1, 2});
  CHECK(grads_of(net) == first);
}

TEST_CASE("Cached features and recomputed bases give the same logits, dropout included", "[combination][cache]") {
  Model<Joint> model(6);
  warm_up(model);
  apply_strategy(model, strategy::combination_layers);
  const auto x = random_input<Model<Joint>>(4, 8);
  Model<Joint> cached = model;  // the same dropout streams
  const auto& recomputed = model.forward(x, Mode::train);
  cached.forward_bases(x.data(), 4, Mode::test);
  std::vector<float> f0(cached.base_features<0>(), cached.base_features<0>() + 4 * 6);
  std::vector<float> f1(cached.base_features<1>(), cached.base_features<1>() + 4 * 5);
  const std::array<const float*, 2> features{f0.data(), f1.data()};
  const auto& from_cache = cached.forward_from_features(features, 4, Mode::train);
  REQUIRE(from_cache.size() == recomputed.size());
  for (std::size_t i = 0; i < recomputed.size(); ++i) CHECK(from_cache[i] == recomputed[i]);
  // The trailing dropout did drop: a test pass differs.
  Model<Joint> test_mode = model;
  const auto& plain = test_mode.forward(x, Mode::test);
  bool differs = false;
  for (std::size_t i = 0; i < plain.size(); ++i) differs = differs || plain[i] != recomputed[i];
  CHECK(differs);
}

TEST_CASE("Average is the mean of its bases' probabilities", "[average]") {
  Model<Average<A, B>> avg(5);
  warm_up(avg.base<1>());
  const auto x = random_input<Model<Average<A, B>>>(3, 9);
  const auto& p = avg.forward(x);
  Model<A> a = avg.base<0>();
  Model<B> b = avg.base<1>();
  Tensor<float> crop(3, B::input_shape);
  detail::centre_crop<A::input_shape, B::input_shape>(x.data(), 3, crop.data());
  const auto& pa = a.forward(x);
  const auto& pb = b.forward(crop);
  for (std::size_t i = 0; i < p.size(); ++i) CHECK(p[i] == Approx((pa[i] + pb[i]) / 2).epsilon(1e-6));
  CHECK(summary<Average<A, B>>().find("average of 2 softmax outputs") != std::string::npos);
}
