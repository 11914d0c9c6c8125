// Every layer passes the finite-difference gradient check, for inputs and parameters, over
// shapes that exercise groups, stride, padding, odd sizes, clipped windows and batch > 1.
#include "gradient_check.hpp"

using namespace hcnn;
using hcnn::testing::require_gradients;

TEST_CASE("Conv gradients", "[gradient][conv]") {
  require_gradients<Conv<4, 3>, Shape{2, 5, 5}>(1);
  require_gradients<Conv<4, 3, 2, 1>, Shape{3, 7, 6}>(2);                   // stride, pad, odd, non-square
  require_gradients<Conv<6, 3, 1, 1, 2>, Shape{4, 5, 5}>(2);                // groups
  require_gradients<Conv<6, 5, 3, 2, 3, Identity>, Shape{3, 9, 8}>(2);      // groups = channels, no ReLU
  require_gradients<Conv<3, 1>, Shape{4, 3, 5}>(3);                         // pointwise path
  require_gradients<Conv<2, 4, 4, 0, 1>, Shape{2, 9, 9}>(1);                // kernel = stride, remainder dropped
  require_gradients<Conv<3, 5, 4, 2>, Shape{2, 11, 10}>(2);                 // stride 4 (CaffeNet's conv1) padded
  require_gradients<Conv<2, 7, 2, 3>, Shape{1, 4, 3}>(1);                   // taps wholly in the padding
  require_gradients<Conv<6, 3, 1, 1, 2>, Shape{4, 5, 5}>(5);                // several samples per lane
}

// 3x3 stride-1 convolutions with at least 16 input channels per group run by Winograd
// (backend/cpu/winograd.hpp): odd maps (overhanging tiles), every padding it takes, groups, a
// map of one pixel, and tiles of several samples in one block.
TEST_CASE("Winograd convolution gradients", "[gradient][conv][winograd]") {
  static_assert(LayerImpl<Conv<3, 3, 1, 1>, Shape{16, 5, 3}, double, Cpu>::use_winograd);
  static_assert(!LayerImpl<Conv<3, 3, 1, 1>, Shape{15, 5, 3}, double, Cpu>::use_winograd);
  require_gradients<Conv<3, 3, 1, 1>, Shape{16, 5, 3}>(2);
  require_gradients<Conv<4, 3, 1, 0, 2>, Shape{32, 5, 4}>(2);                // groups, no padding
  require_gradients<Conv<2, 3, 1, 2, 1, Identity>, Shape{16, 3, 3}>(2);     // pad 2, no ReLU
  require_gradients<Conv<2, 3, 1, 1>, Shape{16, 1, 1}>(5);                  // one pixel, one tile a sample
  // Equal input and output shapes: the input gradient may replace the output gradient.
  static_assert(InPlaceInputGradient<LayerImpl<Conv<16, 3, 1, 1>, Shape{16, 5, 3}, double, Cpu>>);
  static_assert(!InPlaceInputGradient<LayerImpl<Conv<16, 3, 1, 0>, Shape{16, 5, 3}, double, Cpu>>);
  require_gradients<Conv<16, 3, 1, 1>, Shape{16, 5, 3}>(3);
  require_gradients<Conv<32, 3, 1, 1, 2, Identity>, Shape{32, 4, 5}>(2);    // groups, no ReLU
}

TEST_CASE("FC gradients, also on flattened maps", "[gradient][fc]") {
  require_gradients<FC<5>, Shape{3, 2, 3}>(2);
  require_gradients<FC<4, Identity>, Shape{7, 1, 1}>(3);
  require_gradients<FC<37>, Shape{5, 2, 1}>(1);  // one sample: slices of the outputs on the lanes
  require_gradients<Softmax<3>, Shape{6, 1, 1}>(1);
}

TEST_CASE("Softmax layer gradients through the softmax Jacobian", "[gradient][softmax]") {
  require_gradients<Softmax<4>, Shape{2, 2, 2}>(3);
  require_gradients<Softmax<2>, Shape{5, 1, 1}>(1);
}

TEST_CASE("MaxPool gradients with Caffe's ceil rounding and clipping", "[gradient][pool]") {
  require_gradients<MaxPool<3, 2>, Shape{2, 8, 8}>(2);    // ceil: 4x4 (floor would give 3x3)
  require_gradients<MaxPool<2, 2>, Shape{3, 5, 7}>(1);    // odd sizes, clipped last window
  require_gradients<MaxPool<3, 2, 1>, Shape{2, 6, 5}>(2); // padding
}

TEST_CASE("AvgPool gradients, padded cells counted", "[gradient][pool]") {
  require_gradients<AvgPool<3, 2>, Shape{2, 8, 8}>(2);
  require_gradients<AvgPool<3, 2, 1>, Shape{2, 7, 6}>(2);
  require_gradients<AvgPool<2, 1>, Shape{1, 4, 3}>(3);
}

TEST_CASE("LRN gradients", "[gradient][lrn]") {
  require_gradients<LRN<5>, Shape{7, 3, 3}>(2);
  // Large alpha so the normalisation term matters at this input scale.
  require_gradients<LRN<3, 2.0f, 0.75f, 1.5f>, Shape{4, 2, 3}>(2);
  require_gradients<LRN<5, 1.0f, 0.5f, 2.0f>, Shape{3, 2, 2}>(1);    // window wider than the channels
}

TEST_CASE("Dropout gradients in training and test modes", "[gradient][dropout]") {
  require_gradients<Dropout<0.5f>, Shape{3, 4, 4}>(2, 7, Mode::train);
  require_gradients<Dropout<0.3f>, Shape{5, 1, 1}>(3, 9, Mode::test);
}

TEST_CASE("Dropout is inverted: kept values scaled by 1/(1-p), identity at test", "[dropout]") {
  LayerImpl<Dropout<0.25f>, Shape{1000, 1, 1}, double, Cpu> layer;
  Rng rng(3);
  layer.fill(rng, {}, false);
  std::vector<double> x(2000, 2.0), y(2000);
  layer.forward(x.data(), y.data(), 2, Mode::train, nullptr);
  int kept = 0;
  for (double v : y) {
    REQUIRE((v == 0.0 || v == Approx(2.0 / 0.75)));
    kept += v != 0.0;
  }
  CHECK(kept == Approx(1500).margin(80));  // 0.75 * 2000, about 4 standard deviations
  layer.forward(x.data(), y.data(), 2, Mode::test, nullptr);
  CHECK(y == x);
}

TEST_CASE("Philox4x32-10 gives Random123's known answers", "[dropout][random]") {
  // Random123's tests/kat_vectors, the three philox4x32 10 lines: counter, key, result.
  struct Known {
    Philox4x32 counter;
    std::uint32_t key0, key1;
    std::array<std::uint32_t, 4> result;
  };
  const Known known[] = {
      {{{0, 0, 0, 0}}, 0, 0, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const auto& k : known) {
    const Philox4x32 r = philox4x32_10(k.counter, k.key0, k.key1);
    CHECK(std::array<std::uint32_t, 4>{r.v[0], r.v[1], r.v[2], r.v[3]} == k.result);
  }
  static_assert(philox4x32_10({{0, 0, 0, 0}}, 0, 0).v[0] == 0x6627e8d5u);  // usable in constant expressions
}

TEST_CASE("Dropout masks are a function of (key, step, index), one step per training pass", "[dropout][random]") {
  constexpr Shape in{7, 1, 3};  // 21 values per sample: blocks of four cross the samples
  LayerImpl<Dropout<0.4f>, in, float, Cpu> layer;
  Rng rng(5);
  layer.fill(rng, {}, false);
  const std::uint64_t key = layer.stream().key;
  CHECK(layer.stream().step == 0);
  const int n = 3;
  const std::size_t count = n * in.size();
  std::vector<float> x(count, 1.0f), first(count), second(count), test(count);
  layer.forward(x.data(), first.data(), n, Mode::train, nullptr);
  layer.forward(x.data(), test.data(), n, Mode::test, nullptr);  // test passes draw nothing
  layer.forward(x.data(), second.data(), n, Mode::train, nullptr);
  CHECK(layer.stream().step == 2);
  CHECK(test == x);
  const std::uint32_t threshold = keep_threshold(0.4f);
  for (std::size_t i = 0; i < count; ++i) {
    INFO("value " << i);
    CHECK((first[i] != 0.0f) == (counter_block(key, 0, i / 4).v[i % 4] >= threshold));
    CHECK((second[i] != 0.0f) == (counter_block(key, 1, i / 4).v[i % 4] >= threshold));
  }
  CHECK(first != second);
  // Another layer's key draws other masks.
  LayerImpl<Dropout<0.4f>, in, float, Cpu> other;
  other.fill(rng, {}, false);
  std::vector<float> elsewhere(count);
  other.forward(x.data(), elsewhere.data(), n, Mode::train, nullptr);
  CHECK(elsewhere != first);
}

TEST_CASE("Fused softmax + cross-entropy gradient equals the Jacobian path", "[softmax]") {
  using L = LayerImpl<Softmax<5>, Shape{3, 1, 2}, double, Cpu>;
  L fused, general;
  Rng rng(11);
  fused.fill(rng, {.classifier = Filler::gaussian(0.5f)}, true);
  general = fused;
  const int n = 4;
  std::vector<double> x(n * 6), p(n * 5), ws(workspace_elements<double>(fused, n)), dx1(n * 6), dx2(n * 6), dp(n * 5, 0.0);
  for (auto& v : x) v = rng.normal();
  const std::vector<int> labels{0, 4, 2, 2};
  fused.forward(x.data(), p.data(), n, Mode::train, ws.data());
  fused.backward_from_labels(x.data(), p.data(), labels.data(), dx1.data(), n, ws.data());
  // d(mean CE)/dp = -1 / (n p_label) at the label.
  for (int s = 0; s < n; ++s) dp[s * 5 + labels[s]] = -1.0 / (n * p[s * 5 + labels[s]]);
  general.backward(x.data(), p.data(), dp.data(), dx2.data(), n, ws.data());
  for (std::size_t i = 0; i < dx1.size(); ++i) CHECK(dx1[i] == Approx(dx2[i]).epsilon(1e-10));
  for (std::size_t k = 0; k < 2; ++k)
    for (std::size_t i = 0; i < fused.params()[k].size(); ++i)
      CHECK(fused.params()[k].grad[i] == Approx(general.params()[k].grad[i]).epsilon(1e-10));
}

TEST_CASE("BatchNorm gradients with batch statistics (training) and moving statistics (testing)",
          "[gradient][batchnorm]") {
  require_gradients<BatchNorm<>, Shape{3, 3, 2}>(4, 7, Mode::train);
  require_gradients<BatchNorm<ReLU>, Shape{2, 2, 3}>(3, 8, Mode::train);
  require_gradients<BatchNorm<Identity, 1e-3f>, Shape{5, 1, 1}>(6, 9, Mode::train);  // after an FC
  require_gradients<BatchNorm<>, Shape{3, 2, 2}>(2, 10, Mode::test);
  require_gradients<BatchNorm<ReLU>, Shape{2, 3, 1}>(3, 11, Mode::test);
}

TEST_CASE("BatchNorm keeps Caffe's moving sums and normalises with them at test time", "[batchnorm]") {
  using L = LayerImpl<BatchNorm<Identity, 1e-5f, 0.5f>, Shape{1, 1, 2}, double, Cpu>;
  L layer;
  Rng rng(1);
  layer.fill(rng, {}, false);
  auto p = layer.params();
  REQUIRE(p.size() == 5);
  CHECK((p[0].name == "mean" && p[1].name == "variance" && p[2].name == "moving_average_factor"));
  CHECK((!p[0].learnable && !p[1].learnable && !p[2].learnable && p[3].learnable && p[4].learnable));
  std::vector<double> y(4);
  const std::vector<double> a{1, 3, 5, 7}, b{2, 2, 2, 6};  // two batches of 2 samples x 2 positions
  layer.forward(a.data(), y.data(), 2, Mode::train, nullptr);
  // m = 4: mean 4, biased var 5, unbiased 20/3; factor 0 * 0.5 + 1.
  CHECK(p[2].value[0] == 1.0);
  CHECK(p[0].value[0] == Approx(4.0));
  CHECK(p[1].value[0] == Approx(20.0 / 3));
  CHECK(y[0] == Approx(-3 / std::sqrt(5 + 1e-5)));
  layer.forward(b.data(), y.data(), 2, Mode::train, nullptr);  // mean 3, biased var 3, unbiased 4
  CHECK(p[2].value[0] == 1.5);
  CHECK(p[0].value[0] == Approx(0.5 * 4 + 3));
  CHECK(p[1].value[0] == Approx(0.5 * 20.0 / 3 + 4));
  // Testing: mean = 5 / 1.5, var = (10/3 + 4) / 1.5.
  layer.forward(a.data(), y.data(), 2, Mode::test, nullptr);
  CHECK(y[3] == Approx((7 - 5 / 1.5) / std::sqrt((10.0 / 3 + 4) / 1.5 + 1e-5)));
}
