// Winograd F(2x2, 3x3) in float at the widths of real networks. The gradient checks and the
// PyTorch fixtures (16-32 channels) prove the algorithm; this bounds its float rounding where
// the sums are long: VGG's conv5 (512 channels in, a 7x7 map), against the same layer in double
// on the same weights and inputs. Direct convolution in float is off by a few 1e-7 of the
// largest value here; Winograd's transforms add a few more roundings per product.
#include <catch2/catch.hpp>
#include <hcnn/hcnn.hpp>

#include "parameter_values.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

using namespace hcnn;

namespace {

// Largest |got - want| relative to the largest |want|.
template <class T>
double scaled_error(const std::vector<T>& got, const std::vector<double>& want) {
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::abs(double(got[i]) - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return worst / scale;
}

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

}  // namespace

TEST_CASE("Winograd in float stays within float rounding of double at VGG's widths", "[winograd]") {
  using Spec = Conv<24, 3, 1, 1>;
  constexpr Shape In{512, 7, 7};
  using F = LayerImpl<Spec, In, float, Cpu>;
  using D = LayerImpl<Spec, In, double, Cpu>;
  static_assert(F::use_winograd);
  constexpr int n = 2;

  F f;
  D d;
  Rng rng(7);
  std::vector<double> w(f.params()[0].size()), b(24), x(std::size_t(n) * In.size()),
      dy(std::size_t(n) * F::out_shape.size());
  for (auto& v : w) v = rng.normal(0.0, std::sqrt(2.0 / (512 * 9)));  // MSRA, as VGG is trained from
  for (auto& v : b) v = rng.normal(0.0, 0.1);
  for (auto& v : x) v = std::abs(rng.normal());  // a ReLU's output
  for (auto& v : dy) v = rng.normal();

  std::copy(w.begin(), w.end(), f.params()[0].value.begin());
  std::copy(b.begin(), b.end(), f.params()[1].value.begin());
  std::copy(w.begin(), w.end(), d.params()[0].value.begin());
  std::copy(b.begin(), b.end(), d.params()[1].value.begin());

  auto xf = cast<float>(x), dyf = cast<float>(dy);
  std::vector<float> yf(dy.size()), dxf(x.size()), wsf(workspace_elements<float>(f, n));
  std::vector<double> yd(dy.size()), dxd(x.size()), wsd(workspace_elements<double>(d, n));
  f.forward(xf.data(), yf.data(), n, Mode::train, wsf.data());
  d.forward(x.data(), yd.data(), n, Mode::train, wsd.data());
  f.backward(xf.data(), yf.data(), dyf.data(), dxf.data(), n, wsf.data());
  d.backward(x.data(), yd.data(), dy.data(), dxd.data(), n, wsd.data());

  const std::vector<float> dwf(f.params()[0].grad.begin(), f.params()[0].grad.end());
  const std::vector<double> dwd(d.params()[0].grad.begin(), d.params()[0].grad.end());
  CHECK(scaled_error(yf, yd) < 2e-6);
  CHECK(scaled_error(dxf, dxd) < 2e-6);
  CHECK(scaled_error(dwf, dwd) < 2e-6);
}

namespace {

// The products of a 3x3, pad-1 convolution with groups and a ReLU, by direct convolution
// written out in loops: the reference the Winograd paths are checked against.
struct DirectConvolution {
  std::vector<double> y, dx, dw, db;
};

DirectConvolution direct_convolution(const std::vector<double>& w, const std::vector<double>& b,
                                     const std::vector<double>& x, const std::vector<double>& dy, int n, Shape in,
                                     Shape out, int groups) {
  constexpr int k = 3;
  const int in_group = in.c / groups, out_group = out.c / groups;
  const auto at = [](int c, int y, int x_, Shape s) { return (std::size_t(c) * s.h + y) * s.w + x_; };
  DirectConvolution r{std::vector<double>(dy.size()), std::vector<double>(x.size(), 0.0),
                      std::vector<double>(w.size(), 0.0), std::vector<double>(b.size(), 0.0)};
  // Runs body(input channel, input row, input column, index of the weight) for every input
  // value that output (o, row, col) reads.
  const auto each_input = [&](int o, int row, int col, auto&& body) {
    const int first = o / out_group * in_group;
    for (int c = 0; c < in_group; ++c)
      for (int i = 0; i < k; ++i)
        for (int j = 0; j < k; ++j) {
          const int yy = row + i - 1, xx = col + j - 1;
          if (yy >= 0 && yy < in.h && xx >= 0 && xx < in.w)
            body(first + c, yy, xx, ((std::size_t(o) * in_group + c) * k + i) * k + j);
        }
  };
  for (int s = 0; s < n; ++s) {
    const double* xs = x.data() + s * in.size();
    for (int o = 0; o < out.c; ++o)
      for (int row = 0; row < out.h; ++row)
        for (int col = 0; col < out.w; ++col) {
          double sum = b[o];
          each_input(o, row, col, [&](int c, int yy, int xx, std::size_t t) { sum += w[t] * xs[at(c, yy, xx, in)]; });
          r.y[s * out.size() + at(o, row, col, out)] = std::max(sum, 0.0);
        }
    for (int o = 0; o < out.c; ++o)
      for (int row = 0; row < out.h; ++row)
        for (int col = 0; col < out.w; ++col) {
          const std::size_t i_out = s * out.size() + at(o, row, col, out);
          const double g = r.y[i_out] > 0 ? dy[i_out] : 0.0;  // through the ReLU
          r.db[o] += g;
          each_input(o, row, col, [&](int c, int yy, int xx, std::size_t t) {
            r.dw[t] += g * xs[at(c, yy, xx, in)];
            r.dx[s * in.size() + at(c, yy, xx, in)] += g * w[t];
          });
        }
  }
  return r;
}

// Runs a Winograd layer (in double) forward and backward on random weights and inputs and
// checks every product against direct convolution; for a layer of equal shapes, also the
// input gradient written over the output gradient, as Model asks of it.
template <class Spec, Shape In>
void check_against_direct_convolution(int n, unsigned seed) {
  using L = LayerImpl<Spec, In, double, Cpu>;
  static_assert(L::use_winograd);
  constexpr Shape Out = L::out_shape;
  L layer;
  Rng rng(seed);
  auto& w = layer.params()[0].value;
  auto& b = layer.params()[1].value;
  for (auto& v : w) v = rng.normal(0.0, 0.1);
  for (auto& v : b) v = rng.normal(0.0, 0.1);
  std::vector<double> x(std::size_t(n) * In.size()), dy(std::size_t(n) * Out.size());
  for (auto& v : x) v = rng.normal();
  for (auto& v : dy) v = rng.normal();
  const DirectConvolution ref = direct_convolution(std::vector<double>(w.begin(), w.end()),
                                                   std::vector<double>(b.begin(), b.end()), x, dy, n, In, Out,
                                                   L::geometry.groups);

  std::vector<double> y(dy.size()), dx(x.size()), ws(workspace_elements<double>(layer, n));
  layer.forward(x.data(), y.data(), n, Mode::train, ws.data());
  auto dy_in_place = dy;  // backward turns it into the gradient before the ReLU
  layer.backward(x.data(), y.data(), dy_in_place.data(), dx.data(), n, ws.data());
  const std::vector<double> dw(layer.params()[0].grad.begin(), layer.params()[0].grad.end());
  const std::vector<double> db(layer.params()[1].grad.begin(), layer.params()[1].grad.end());
  CHECK(scaled_error(y, ref.y) < 1e-12);
  CHECK(scaled_error(dx, ref.dx) < 1e-12);
  CHECK(scaled_error(dw, ref.dw) < 1e-12);
  CHECK(scaled_error(db, ref.db) < 1e-12);
  if constexpr (L::input_gradient_in_place) {
    auto shared = dy;
    layer.backward(x.data(), y.data(), shared.data(), shared.data(), n, ws.data());
    CHECK(scaled_error(shared, ref.dx) < 1e-12);
    CHECK(std::equal(dw.begin(), dw.end(), layer.params()[0].grad.begin()));
  }
}

}  // namespace

// The weight gradient sums over blocks of tiles, each lane's blocks into its own partial sum
// (winograd.hpp: weight_block_tiles). Here a lane takes several blocks whatever the thread
// count (16 + 16 channels: blocks of 512 tiles; 6 samples of 16 x 16 tiles), and the input
// gradient over the output gradient runs in several chunks of samples.
TEST_CASE("Winograd over several blocks per lane agrees with direct convolution", "[winograd]") {
  using L = LayerImpl<Conv<16, 3, 1, 1>, Shape{16, 32, 32}, double, Cpu>;
  constexpr int n = 6;
  REQUIRE(long(n) * cpu::winograd::tiles_per_sample(L::out_shape.h, L::out_shape.w) > 2L * L::geometry.weight_block());
  REQUIRE(L::geometry.in_place_chunk(n) < n);
  REQUIRE(!L::geometry.by_taps(n, L::geometry.out_tiles()));
  check_against_direct_convolution<Conv<16, 3, 1, 1>, Shape{16, 32, 32}>(n, 11);
}

// Wide layers with few tiles (VGG's conv3-5 at batch 1) convolve every tile of the batch a
// transformed tap at a time (conv.hpp: convolve_by_taps), forward and for the input gradient:
// with groups, and in place.
TEST_CASE("Winograd by taps agrees with direct convolution", "[winograd]") {
  using Grouped = LayerImpl<Conv<256, 3, 1, 1, 2>, Shape{512, 5, 5}, double, Cpu>;
  static_assert(!Grouped::input_gradient_in_place);
  REQUIRE(Grouped::geometry.by_taps(2, Grouped::geometry.out_tiles()));
  REQUIRE(Grouped::geometry.by_taps(2, Grouped::geometry.in_tiles()));
  check_against_direct_convolution<Conv<256, 3, 1, 1, 2>, Shape{512, 5, 5}>(2, 13);

  using Equal = LayerImpl<Conv<256, 3, 1, 1>, Shape{256, 4, 4}, double, Cpu>;
  static_assert(Equal::input_gradient_in_place);
  REQUIRE(Equal::geometry.by_taps(3, Equal::geometry.out_tiles()));
  check_against_direct_convolution<Conv<256, 3, 1, 1>, Shape{256, 4, 4}>(3, 17);
}

// Blocks of tiles are dealt to lanes on demand, except where a lane adds into its own partial
// sum (the weight gradient), so training is the same bit for bit from run to run at a given
// thread count. Several blocks per lane in every pass here, im2col and Winograd layers.
TEST_CASE("Training steps through Winograd layers are deterministic", "[winograd][model]") {
  using Net3 = Net<Input<3, 32, 32>, Conv<16, 3, 1, 1>, Conv<16, 3, 1, 1>, MaxPool<2, 2>, Conv<24, 3, 1, 1>,
                   Conv<24, 3, 1, 1>, FC<8>, Softmax<4>>;
  auto train = [] {
    Model<Net3> model(3);
    Tensor<float> x;
    x.resize(12, Model<Net3>::input_shape);
    Rng rng(4);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(rng.normal());
    const std::vector<int> labels{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
    auto params = model.parameters();
    SgdSolver<float> solver(Sgd{.lr = 0.01f});
    for (int step = 0; step < 3; ++step) {
      model.forward(x, Mode::train);
      model.backward(labels);
      solver.step(params);
    }
    return testing::parameter_values(model);
  };
  const auto first = train();
  for (int run = 0; run < 3; ++run) CHECK(train() == first);
}
