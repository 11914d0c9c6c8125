// Model-level behaviour: whole-network gradients through the fused loss, shapes and names of
// the zoo, deterministic seeding, run-time errors, and a training smoke test.
#include "gradient_check.hpp"

#include <cstdint>
#include <limits>
#include <sstream>

using namespace hcnn;

namespace {

// A small net that uses every layer kind; Dropout is last-but-one so the whole-net check
// covers it in training mode.
using Tiny = Net<Input<3, 11, 10>, Conv<4, 3, 2, 1>, MaxPool<3, 2>, LRN<3, 1.0f>, Conv<6, 3, 1, 1, 2>, AvgPool<2, 1>,
                 FC<5>, Dropout<0.5f>, Softmax<3>>;

template <class M>
void randomize(Tensor<typename M::value_type>& x, int n, std::uint64_t seed) {
  x.resize(n, M::input_shape);
  Rng rng(seed);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = typename M::value_type(rng.normal());
}

}  // namespace

// Central differences of the mean cross-entropy against the model's backward pass, for the
// input and every third element of each blob.
template <class Network>
void check_network_gradients(const Init& init, std::size_t blobs) {
  Model<Network, Cpu, double> model(5, init);
  Tensor<double> x;
  randomize<decltype(model)>(x, 3, 17);
  const std::vector<int> labels{2, 0, 1};

  Model<Network, Cpu, double> analytic = model;
  analytic.forward(x, Mode::train);
  analytic.backward(labels, {.input_gradient = true});

  // A copy per evaluation replays the same dropout mask.
  auto loss = [&](const Model<Network, Cpu, double>& m) {
    Model<Network, Cpu, double> copy = m;
    copy.forward(x, Mode::train);
    return copy.loss(labels);
  };
  auto model_loss = [&] { return loss(model); };
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); i += 7)
    worst = std::max(worst, testing::relative_error(testing::central_difference(x[i], model_loss),
                                                    analytic.input_gradient()[i]));
  auto params = model.parameters();
  auto grads = analytic.parameters();
  REQUIRE(params.size() == blobs);
  for (std::size_t p = 0; p < params.size(); ++p) {
    for (std::size_t i = 0; i < params[p].param->size(); i += 3) {
      const double e = testing::relative_error(testing::central_difference(params[p].param->value[i], model_loss),
                                               grads[p].param->grad[i]);
      INFO(params[p].layer << "." << params[p].param->name << "[" << i << "]");
      CHECK(e < 1e-6);
      worst = std::max(worst, e);
    }
  }
  CHECK(worst < 1e-6);
}

TEST_CASE("Whole-network gradients of the mean cross-entropy", "[gradient][model]") {
  check_network_gradients<Tiny>(Init{.weights = Filler::msra(), .classifier = Filler::gaussian(0.3f), .bias = 0.1f}, 8);
}

// Equal-shaped Winograd convolutions compute their input gradient over their output
// gradient, so the model keeps both in one buffer: here the gradients of the input and of
// conv1's and conv2's outputs share one buffer, those of pool's and conv3's outputs the other.
TEST_CASE("Whole-network gradients through layers that work in place", "[gradient][model][winograd]") {
  using InPlace = Net<Input<16, 5, 4>, Conv<16, 3, 1, 1>, Conv<16, 3, 1, 1, 2>, MaxPool<2, 2>, Conv<16, 3, 1, 1>, FC<3>,
                      Softmax<3>>;
  check_network_gradients<InPlace>(Init{.weights = Filler::msra(), .classifier = Filler::gaussian(0.3f), .bias = 0.1f},
                                   10);
}

TEST_CASE("Backward from a given output gradient, on a network without a classifier", "[gradient][model]") {
  using Features = Net<Input<2, 6, 5>, Conv<3, 3, 1, 1>, MaxPool<2, 2>, FC<4, Identity>>;
  static_assert(!Model<Features>::is_classifier);
  Model<Features, Cpu, double> model(4, Init{.weights = Filler::gaussian(0.4f)});
  Tensor<double> x;
  randomize<decltype(model)>(x, 2, 5);
  std::vector<double> r(2 * 4);
  Rng rng(6);
  for (auto& v : r) v = rng.normal();
  auto projected = [&] {  // <output, r>
    Model<Features, Cpu, double> copy = model;
    const auto& y = copy.forward(x);
    return std::inner_product(y.data(), y.data() + y.size(), r.begin(), 0.0);
  };
  Model<Features, Cpu, double> analytic = model;
  analytic.forward(x);
  analytic.backward(r.data(), {.input_gradient = true});
  for (std::size_t i = 0; i < x.size(); i += 5)
    CHECK(testing::relative_error(testing::central_difference(x[i], projected), analytic.input_gradient()[i]) < 1e-7);
  auto params = model.parameters();
  auto grads = analytic.parameters();
  for (std::size_t p = 0; p < params.size(); ++p)
    for (std::size_t i = 0; i < params[p].param->size(); i += 4)
      CHECK(testing::relative_error(testing::central_difference(params[p].param->value[i], projected),
                                    grads[p].param->grad[i]) < 1e-7);
  Model<Features> fresh(1);
  CHECK_THROWS_WITH(fresh.backward(std::vector<float>(8).data()), Catch::Contains("before any forward pass"));
}

TEST_CASE("Backward skips frozen layers and the input gradient by default", "[model]") {
  Model<Tiny, Cpu, double> model(5);
  Tensor<double> x;
  randomize<decltype(model)>(x, 2, 3);
  model.forward(x, Mode::test);
  for (auto& p : model.parameters()) p.param->grad.fill(42.0);
  model.freeze_below(5);  // FC<5> and above train
  model.backward(std::vector<int>{0, 1});
  auto params = model.parameters();
  // conv1 and conv2 are below the stop: untouched. fc3 and fc4 (4 blobs) are fresh.
  REQUIRE(params.size() == 8);
  for (std::size_t p = 0; p < 4; ++p) CHECK(params[p].param->grad[0] == 42.0);
  for (std::size_t p = 4; p < 8; ++p) CHECK(params[p].param->grad[0] != 42.0);
}

TEST_CASE("Zoo networks have Caffe's shapes, parameter counts and layer names", "[zoo]") {
  using D = zoo::CaffeNet<1000>;
  STATIC_REQUIRE(param_count<D>() == 60'965'224);
  STATIC_REQUIRE(mac_count<D>() == 724'406'816);
  STATIC_REQUIRE(D::weight_layers == 8);
  STATIC_REQUIRE(D::shape_before<1>() == Shape{96, 55, 55});
  STATIC_REQUIRE(D::shape_before<2>() == Shape{96, 27, 27});
  STATIC_REQUIRE(D::shape_before<4>() == Shape{256, 27, 27});
  STATIC_REQUIRE(D::shape_before<6>() == Shape{256, 13, 13});
  STATIC_REQUIRE(D::shape_before<9>() == Shape{256, 13, 13});
  STATIC_REQUIRE(D::shape_before<10>() == Shape{256, 6, 6});
  STATIC_REQUIRE(D::output_shape == Shape{1000, 1, 1});
  CHECK(layer_names<D>() == std::array<std::string, 15>{"conv1", "pool1", "norm1", "conv2", "pool2", "norm2", "conv3",
                                                        "conv4", "conv5", "pool5", "fc6", "drop6", "fc7", "drop7",
                                                        "fc8"});

  using VD = zoo::VGG19<1000>;
  STATIC_REQUIRE(param_count<VD>() == 143'667'240);
  STATIC_REQUIRE(mac_count<VD>() == 19'632'062'464);
  STATIC_REQUIRE(VD::weight_layers == 19);
  STATIC_REQUIRE(VD::shape_before<21>() == Shape{512, 7, 7});
  STATIC_REQUIRE(param_count<Net<Input<512, 7, 7>, FC<4096>>>() == 102'764'544);  // VGG fc6 alone
  CHECK(layer_names<VD>()[0] == "conv1_1");
  CHECK(layer_names<VD>()[19] == "conv5_4");
  CHECK(layer_names<VD>()[25] == "fc8");

  STATIC_REQUIRE(param_count<zoo::VGG16<1000>>() == 138'357'544);
  STATIC_REQUIRE(zoo::VGG16<1000>::weight_layers == 16);
  STATIC_REQUIRE(zoo::SmallD<51>::shape_before<10>() == Shape{128, 3, 3});
  STATIC_REQUIRE(zoo::SmallVD<51>::shape_before<18>() == Shape{128, 2, 2});
  STATIC_REQUIRE(zoo::SmallVD<51>::weight_layers == 16);
}

TEST_CASE("Caffe's pooling rounds up where floor would not", "[zoo][pool]") {
  // CaffeNet on a 224 input: pool1 is 27 with ceil, 26 with floor.
  using D224 = Net<Input<3, 224, 224>, Conv<96, 11, 4>, MaxPool<3, 2>>;
  STATIC_REQUIRE(D224::output_shape == Shape{96, 27, 27});
  STATIC_REQUIRE(pooled_extent(7, 3, 2, 1) == 4);
  STATIC_REQUIRE(pooled_extent(6, 2, 2, 1) == 4);
  STATIC_REQUIRE(pooled_extent(5, 2, 2, 1) == 3);  // a window starting in the padding is dropped
}

TEST_CASE("summary prints each layer and Caffe's totals", "[summary]") {
  const std::string text = summary<zoo::CaffeNet<1000>>();
  CHECK_THAT(text, Catch::Contains("conv2     Conv<256> 5x5 pad 2 group 2 +ReLU"));
  CHECK_THAT(text, Catch::Contains("256x6x6"));
  CHECK_THAT(text, Catch::Contains("37,752,832"));
  CHECK_THAT(text, Catch::Contains("60,965,224"));
  CHECK_THAT(text, Catch::Contains("724,406,816"));
  CHECK_THAT(text, Catch::Contains("8 weight layers"));
}

TEST_CASE("Counts are grouped by thousands, negative ones too", "[summary]") {
  CHECK(with_commas(0) == "0");
  CHECK(with_commas(999) == "999");
  CHECK(with_commas(1000) == "1,000");
  CHECK(with_commas(-123456) == "-123,456");
  CHECK(with_commas(std::numeric_limits<std::int64_t>::min()) == "-9,223,372,036,854,775,808");
  CHECK(with_commas(std::numeric_limits<std::int64_t>::max()) == "9,223,372,036,854,775,807");
}

TEST_CASE("Initialisation is seeded and deterministic, per layer", "[model][init]") {
  Model<Tiny> a(123), b(123), c(124);
  auto pa = a.parameters(), pb = b.parameters(), pc = c.parameters();
  CHECK(std::equal(pa[0].param->value.begin(), pa[0].param->value.end(), pb[0].param->value.begin()));
  CHECK_FALSE(std::equal(pa[0].param->value.begin(), pa[0].param->value.end(), pc[0].param->value.begin()));
  // msra: std sqrt(2 / fan_in) with Caffe's fan_in = (C / groups) * k * k.
  Model<Net<Input<64, 8, 8>, Conv<256, 3, 1, 1, 2>, Softmax<2>>> wide(9);
  const auto& w = wide.parameters()[0].param->value;
  double sum2 = 0;
  for (float v : w) sum2 += double(v) * v;
  CHECK(std::sqrt(sum2 / w.size()) == Approx(std::sqrt(2.0 / (32 * 9))).epsilon(0.02));
  // Xavier: uniform in +-sqrt(3 / fan_in).
  Model<Net<Input<64, 8, 8>, Conv<256, 3, 1, 1, 2>, Softmax<2>>> xavier(9, Init{.weights = Filler::xavier()});
  const float bound = std::sqrt(3.0f / (32 * 9));
  float largest = 0;
  for (float v : xavier.parameters()[0].param->value) largest = std::max(largest, std::abs(v));
  CHECK(largest <= bound);
  CHECK(largest > 0.99f * bound);
}

TEST_CASE("Run-time errors name the problem and the shapes", "[model][errors]") {
  Model<Tiny> model(1);
  Tensor<float> wrong(2, Shape{3, 10, 11});
  CHECK_THROWS_WITH(model.forward(wrong), Catch::Contains("3x10x11") && Catch::Contains("expects 3x11x10"));
  CHECK_THROWS_AS(model.forward(wrong), ShapeError);
  CHECK_THROWS_WITH(model.backward(std::vector<int>{0}), Catch::Contains("before any forward pass"));
  Tensor<float> x(2, Tiny::input_shape);
  x.fill(0.5f);
  model.forward(x);
  CHECK_THROWS_WITH(model.backward(std::vector<int>{0}), Catch::Contains("1 labels for a batch of 2"));
  CHECK_THROWS_WITH(model.backward(std::vector<int>{0, 3}), Catch::Contains("label 3 of sample 1 is outside [0, 3)"));
}

TEST_CASE("Buffers are reused: the same batch size gives the same output storage", "[model]") {
  Model<Tiny> model(1);
  Tensor<float> x(4, Tiny::input_shape);
  x.fill(0.25f);
  const float* first = model.forward(x).data();
  x.resize(2, Tiny::input_shape);  // smaller batches reuse the storage too
  const float* second = model.forward(x).data();
  CHECK(first == second);
  CHECK(model.output().batch() == 2);
}

TEST_CASE("Training smoke test: SGD steps on a fixed batch lower the loss", "[train]") {
  Model<zoo::SmallD<5>> model(3);
  Tensor<float> x;
  randomize<decltype(model)>(x, 8, 99);
  const std::vector<int> labels{0, 1, 2, 3, 4, 0, 1, 2};
  SgdSolver<float> solver(Sgd{.lr = 0.001f, .momentum = 0.9f, .weight_decay = 5e-4f});
  model.forward(x, Mode::test);
  const double initial = model.loss(labels);
  for (int step = 0; step < 40; ++step) {
    model.forward(x, Mode::train);
    model.backward(labels);
    solver.step(model.parameters());
  }
  model.forward(x, Mode::test);
  CHECK(model.loss(labels) < 0.5 * initial);
}

#if defined(HCNN_HAS_MXCSR)
TEST_CASE("A CPU model flushes denormals while it computes, and restores the caller's mode", "[model][denormals]") {
  // 1e-20 x 1e-20 = 1e-40 is a denormal float: flushed to zero inside the pass.
  Model<Net<Input<1, 1, 1>, FC<1, Identity>>> model(1);
  model.parameters()[0].param->value[0] = 1e-20f;
  model.parameters()[1].param->value[0] = 0.0f;
  const unsigned before = _mm_getcsr();
  REQUIRE((before & 0x8040u) == 0);  // the test process runs with IEEE denormals
  const float x = 1e-20f;
  CHECK(model.forward(&x, 1)[0] == 0.0f);
  CHECK(_mm_getcsr() == before);
  volatile float a = 1e-20f, b = 1e-20f;
  CHECK(a * b > 0.0f);  // the caller's own arithmetic keeps its denormals
}
#endif
