// Winograd F(2x2, 3x3) in float at the widths of real networks. The gradient checks and the
// PyTorch fixtures (16-32 channels) prove the algorithm; this bounds its float rounding where
// the sums are long: VGG's conv5 (512 channels in, a 7x7 map), against the same layer in double
// on the same weights and inputs. Direct convolution in float is off by a few 1e-7 of the
// largest value here; Winograd's transforms add a few more roundings per product.
#include <catch2/catch.hpp>
#include <hcnn/hcnn.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace hcnn;

namespace {

// Largest |float - double| relative to the largest |double|.
double scaled_error(const std::vector<float>& f, const std::vector<double>& d) {
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < d.size(); ++i) {
    worst = std::max(worst, std::abs(double(f[i]) - d[i]));
    scale = std::max(scale, std::abs(d[i]));
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
