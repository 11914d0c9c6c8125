// Agreement with an independent implementation: PyTorch 1.13, through the committed fixtures
// of tests/fixtures/generate.py. hcnn runs each case in double (to 1e-9) and in float (to
// float rounding), on the same weights and inputs.
#include <catch2/catch.hpp>
#include <hcnn/hcnn.hpp>

#include "fixture.hpp"

using namespace hcnn;
using hcnn::testing::Array;
using hcnn::testing::Fixture;

namespace {

template <class T>
std::vector<T> as(const Array& a) {
  return std::vector<T>(a.data.begin(), a.data.end());
}

template <class T>
void require_close(const std::vector<T>& actual, const Array& expected, const std::string& what) {
  REQUIRE(actual.size() == expected.data.size());
  const double tolerance = std::is_same_v<T, double> ? 1e-9 : 2e-4;
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double e = std::abs(double(actual[i]) - expected.data[i]) / std::max(1.0, std::abs(expected.data[i]));
    if (e > worst) worst = e, at = i;
  }
  INFO(what << ": worst relative error " << worst << " at " << at << " (hcnn " << double(actual[at]) << ", PyTorch "
            << expected.data[at] << ")");
  CHECK(worst < tolerance);
}

template <class T, class P>
void load(P& param, const Array& a) {
  REQUIRE(param.size() == a.data.size());
  std::copy(a.data.begin(), a.data.end(), param.value.begin());
}

// One layer against a single-layer fixture: forward y, and backward dx (and dw, db) for dy.
template <class Spec, Shape In, class T>
void compare_layer(const std::string& name) {
  const Fixture f(name);
  using L = LayerImpl<Spec, In, T, Cpu>;
  L layer;
  if (!layer.params().empty()) {
    load<T>(layer.params()[0], f["w"]);
    load<T>(layer.params()[1], f["b"]);
  }
  const int n = f["x"].dims[0];
  auto x = as<T>(f["x"]);
  std::vector<T> y(f["y"].data.size()), dx(x.size()), ws(workspace_elements<T>(layer, n));
  layer.forward(x.data(), y.data(), n, Mode::test, ws.data());
  require_close(y, f["y"], name + " forward");
  auto dy = as<T>(f["dy"]);
  layer.backward(x.data(), y.data(), dy.data(), dx.data(), n, ws.data());
  require_close(dx, f["dx"], name + " input gradient");
  if (!layer.params().empty()) {
    require_close(std::vector<T>(layer.params()[0].grad.begin(), layer.params()[0].grad.end()), f["dw"],
                  name + " weight gradient");
    require_close(std::vector<T>(layer.params()[1].grad.begin(), layer.params()[1].grad.end()), f["db"],
                  name + " bias gradient");
  }
}

}  // namespace

TEMPLATE_TEST_CASE("Layers agree with PyTorch", "[pytorch]", double, float) {
  SECTION("grouped, strided, padded convolution") { compare_layer<Conv<6, 3, 2, 1, 2>, Shape{4, 7, 6}, TestType>("conv_grouped"); }
  SECTION("5x5 grouped convolution") { compare_layer<Conv<4, 5, 1, 2, 2>, Shape{2, 6, 6}, TestType>("conv_k5_groups"); }
  SECTION("grouped 3x3 convolution by Winograd") { compare_layer<Conv<6, 3, 1, 1, 2>, Shape{32, 9, 7}, TestType>("conv_winograd"); }
  SECTION("Winograd in several blocks") { compare_layer<Conv<4, 3, 1, 0>, Shape{16, 40, 36}, TestType>("conv_winograd_blocks"); }
  SECTION("ceil-mode max pooling") { compare_layer<MaxPool<3, 2>, Shape{3, 8, 8}, TestType>("maxpool_ceil"); }
  SECTION("padded ceil-mode average pooling") { compare_layer<AvgPool<3, 2, 1>, Shape{2, 7, 6}, TestType>("avgpool_pad_ceil"); }
  SECTION("LRN at CaffeNet's parameters") { compare_layer<LRN<5>, Shape{7, 3, 3}, TestType>("lrn_caffenet"); }
  SECTION("LRN with a strong normaliser") { compare_layer<LRN<3, 2.0f, 0.75f, 1.5f>, Shape{6, 2, 3}, TestType>("lrn_strong"); }
  SECTION("FC on a flattened map") { compare_layer<FC<7>, Shape{3, 4, 5}, TestType>("fc_flatten"); }
}

TEMPLATE_TEST_CASE("Softmax + cross-entropy agrees with PyTorch", "[pytorch]", double, float) {
  const Fixture f("softmax_xent");
  Model<Net<Input<2, 2, 2>, Softmax<4>>, Cpu, TestType> model;
  load<TestType>(*model.parameters()[0].param, f["w"]);
  load<TestType>(*model.parameters()[1].param, f["b"]);
  Tensor<TestType> x(3, Shape{2, 2, 2});
  std::copy(f["x"].data.begin(), f["x"].data.end(), x.data());
  const auto labels = f.labels("labels");
  const auto& p = model.forward(x, Mode::train);
  require_close(std::vector<TestType>(p.data(), p.data() + p.size()), f["p"], "probabilities");
  CHECK(model.loss(labels) == Approx(f["loss"].data[0]).epsilon(1e-6));
  model.backward(labels, {.input_gradient = true});
  require_close(std::vector<TestType>(model.input_gradient(), model.input_gradient() + x.size()), f["dx"], "dx");
  const auto params = model.parameters();
  require_close(std::vector<TestType>(params[0].param->grad.begin(), params[0].param->grad.end()), f["dw"], "dw");
  require_close(std::vector<TestType>(params[1].param->grad.begin(), params[1].param->grad.end()), f["db"], "db");
}

TEMPLATE_TEST_CASE("A whole small network agrees with PyTorch", "[pytorch]", double, float) {
  using Small = Net<Input<3, 15, 14>, Conv<8, 5, 2, 1>, MaxPool<3, 2>, LRN<5>, Conv<6, 3, 1, 1, 2>, AvgPool<3, 2, 1>,
                    FC<10>, Softmax<5>>;
  const Fixture f("small_net");
  Model<Small, Cpu, TestType> model;
  for (auto& [layer, param] : model.parameters()) load<TestType>(*param, f[layer + (param->name == "weight" ? "_w" : "_b")]);
  Tensor<TestType> x(4, Small::input_shape);
  std::copy(f["x"].data.begin(), f["x"].data.end(), x.data());
  const auto labels = f.labels("labels");
  const auto& p = model.forward(x, Mode::train);
  require_close(std::vector<TestType>(p.data(), p.data() + p.size()), f["p"], "probabilities");
  CHECK(model.loss(labels) == Approx(f["loss"].data[0]).epsilon(1e-5));
  model.backward(labels, {.input_gradient = true});
  require_close(std::vector<TestType>(model.input_gradient(), model.input_gradient() + x.size()), f["dx"], "dx");
  for (auto& [layer, param] : model.parameters()) {
    const std::string key = "d" + layer + (param->name == "weight" ? "_w" : "_b");
    require_close(std::vector<TestType>(param->grad.begin(), param->grad.end()), f[key], key);
  }
}

TEMPLATE_TEST_CASE("BatchNorm agrees with PyTorch's batch_norm in training and testing", "[pytorch][batchnorm]", double,
                   float) {
  SECTION("training: batch statistics, ReLU, and the moving sums after one step") {
    const Fixture f("batchnorm_train");
    using L = LayerImpl<BatchNorm<ReLU>, Shape{4, 3, 2}, TestType, Cpu>;
    L layer;
    Rng rng(1);
    layer.fill(rng, {}, false);
    load<TestType>(layer.params()[3], f["w"]);
    load<TestType>(layer.params()[4], f["b"]);
    auto x = as<TestType>(f["x"]);
    std::vector<TestType> y(x.size()), dx(x.size());
    layer.forward(x.data(), y.data(), 3, Mode::train, nullptr);
    require_close(y, f["y"], "forward");
    auto dy = as<TestType>(f["dy"]);
    layer.backward(x.data(), y.data(), dy.data(), dx.data(), 3, nullptr);
    require_close(dx, f["dx"], "input gradient");
    auto grad = [](auto& p) { return std::vector<TestType>(p.grad.begin(), p.grad.end()); };
    require_close(grad(layer.params()[3]), f["dw"], "scale gradient");
    require_close(grad(layer.params()[4]), f["db"], "bias gradient");
    const TestType factor = layer.params()[2].value[0];
    std::vector<TestType> mean, var;
    for (int c = 0; c < 4; ++c) {
      mean.push_back(layer.params()[0].value[c] / factor);
      var.push_back(layer.params()[1].value[c] / factor);
    }
    require_close(mean, f["running_mean"], "moving mean");
    require_close(var, f["running_var"], "moving (unbiased) variance");
  }
  SECTION("testing: moving statistics through Caffe's scale factor") {
    const Fixture f("batchnorm_test");
    using L = LayerImpl<BatchNorm<>, Shape{3, 2, 3}, TestType, Cpu>;
    L layer;
    auto p = layer.params();
    const double factor = 2.5;
    for (int c = 0; c < 3; ++c) {
      p[0].value[c] = TestType(f["mean"].data[c] * factor);
      p[1].value[c] = TestType(f["var"].data[c] * factor);
    }
    p[2].value[0] = TestType(factor);
    load<TestType>(p[3], f["w"]);
    load<TestType>(p[4], f["b"]);
    auto x = as<TestType>(f["x"]);
    std::vector<TestType> y(x.size()), dx(x.size());
    layer.forward(x.data(), y.data(), 2, Mode::test, nullptr);
    require_close(y, f["y"], "forward");
    auto dy = as<TestType>(f["dy"]);
    layer.backward(x.data(), y.data(), dy.data(), dx.data(), 2, nullptr);
    require_close(dx, f["dx"], "input gradient");
    require_close(std::vector<TestType>(p[3].grad.begin(), p[3].grad.end()), f["dw"], "scale gradient");
    require_close(std::vector<TestType>(p[4].grad.begin(), p[4].grad.end()), f["db"], "bias gradient");
  }
}
