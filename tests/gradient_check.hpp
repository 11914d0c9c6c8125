// The generic finite-difference gradient checker that every layer passes.
//
// For a bound layer L (in double precision) it draws an input x and a random projection R of
// the output, takes the scalar loss f = <L(x), R>, and compares the layer's backward pass
// (dout = R) with central differences of f for every input element and every parameter
// element. Each loss evaluation runs a fresh copy of the layer made before the first forward,
// so stochastic layers (dropout) see the same mask every time.
#pragma once

#include <catch2/catch.hpp>
#include <hcnn/hcnn.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace hcnn::testing {

struct GradientReport {
  double worst = 0;     // largest relative error seen
  std::string where;    // which element
};

inline double relative_error(double a, double b) { return std::abs(a - b) / std::max({1.0, std::abs(a), std::abs(b)}); }

// d loss / d value by central differences; `value` is restored afterwards.
template <class Loss>
double central_difference(double& value, Loss&& loss, double eps = 1e-6) {
  const double saved = value;
  value = saved + eps;
  const double up = loss();
  value = saved - eps;
  const double down = loss();
  value = saved;
  return (up - down) / (2 * eps);
}

template <class Spec, Shape In>
GradientReport check_layer_gradients(int batch, std::uint64_t seed, Mode mode = Mode::train) {
  using L = LayerImpl<Spec, In, double, Cpu>;
  constexpr Shape out = L::out_shape;
  const std::size_t in_size = std::size_t(batch) * In.size(), out_size = std::size_t(batch) * out.size();

  Rng rng(seed);
  L reference;
  reference.fill(rng, Init{.weights = Filler::gaussian(0.3f), .classifier = Filler::gaussian(0.3f)}, false);
  for (auto& p : reference.params())  // non-zero biases exercise the bias gradients
    if (p.learnable)
      for (auto& v : p.value) v = rng.normal(0.0, 0.3);

  std::vector<double> x(in_size), r(out_size), y(out_size), dx(in_size), dout(out_size);
  std::vector<double> ws(workspace_elements<double>(reference, batch));
  for (auto& v : x) v = rng.normal();
  for (auto& v : r) v = rng.normal();
  // Layer state (BatchNorm's moving statistics) comes from a training pass, as in use; the
  // test-mode check then differentiates through those fixed statistics.
  if (mode == Mode::test) reference.forward(x.data(), y.data(), batch, Mode::train, ws.data());

  auto loss = [&](L layer) {  // by value: a fresh copy per evaluation
    std::vector<double> out_values(out_size);
    layer.forward(x.data(), out_values.data(), batch, mode, ws.data());
    double f = 0;
    for (std::size_t i = 0; i < out_size; ++i) f += out_values[i] * r[i];
    return f;
  };

  L analytic = reference;
  analytic.forward(x.data(), y.data(), batch, mode, ws.data());
  dout = r;
  analytic.backward(x.data(), y.data(), dout.data(), dx.data(), batch, ws.data());

  GradientReport report;
  auto compare = [&](double numeric, double exact, const std::string& where) {
    const double e = relative_error(numeric, exact);
    if (e > report.worst) report = {e, where + ": numeric " + std::to_string(numeric) + ", backward " + std::to_string(exact)};
  };

  // Backward overwrites the parameter gradients: a second call gives the same ones, bit for
  // bit, and so does a call without an input gradient (a network's first layer), which must
  // leave the parameter gradients as they are. (The second input gradient goes to the same
  // buffer: Eigen's rounding may depend on the destination's alignment.)
  std::vector<std::vector<double>> first;
  for (auto& p : analytic.params())
    if (p.learnable) first.emplace_back(p.grad.begin(), p.grad.end());
  const std::vector<double> dx_first = dx;
  auto check_parameter_gradients_unchanged = [&](const std::string& call) {
    std::size_t k = 0;
    for (auto& p : analytic.params()) {
      if (!p.learnable) continue;
      for (std::size_t i = 0; i < p.size(); ++i)
        if (p.grad[i] != first[k][i]) report = {1.0, call + " changed " + p.name + "[" + std::to_string(i) + "]"};
      ++k;
    }
  };
  for (double* input_gradient : {dx.data(), static_cast<double*>(nullptr)}) {
    const std::string call = input_gradient != nullptr ? "a second backward" : "a backward without input gradient";
    dout = r;
    analytic.backward(x.data(), y.data(), dout.data(), input_gradient, batch, ws.data());
    check_parameter_gradients_unchanged(call);
    if (input_gradient != nullptr && dx != dx_first) report = {1.0, call + " gave another input gradient"};
  }
  // A layer that may compute its input gradient over its output gradient (as Model then
  // asks) gives the same gradients that way.
  if constexpr (InPlaceInputGradient<L>) {
    dout = r;
    analytic.backward(x.data(), y.data(), dout.data(), dout.data(), batch, ws.data());
    for (std::size_t i = 0; i < in_size; ++i)
      if (relative_error(dout[i], dx_first[i]) > 1e-12)
        report = {1.0, "in place, input[" + std::to_string(i) + "]: " + std::to_string(dout[i]) + " instead of " +
                           std::to_string(dx_first[i])};
    check_parameter_gradients_unchanged("a backward in place");
  }
  if (report.worst > 0) return report;
  auto reference_loss = [&] { return loss(reference); };
  for (std::size_t i = 0; i < in_size; ++i)
    compare(central_difference(x[i], reference_loss), dx[i], "input[" + std::to_string(i) + "]");
  auto params = reference.params();
  auto grads = analytic.params();
  for (std::size_t p = 0; p < params.size(); ++p) {
    if (!params[p].learnable) continue;
    for (std::size_t i = 0; i < params[p].size(); ++i)
      compare(central_difference(params[p].value[i], reference_loss), grads[p].grad[i],
              params[p].name + "[" + std::to_string(i) + "]");
  }
  return report;
}

// Runs the checker and reports the worst element on failure.
template <class Spec, Shape In>
void require_gradients(int batch, std::uint64_t seed = 7, Mode mode = Mode::train, double tolerance = 1e-6) {
  const GradientReport report = check_layer_gradients<Spec, In>(batch, seed, mode);
  INFO(std::string(Spec::kind) << Spec::describe() << " at " << to_string(In) << " x" << batch << ", worst "
                               << report.where);
  CHECK(report.worst < tolerance);
}

}  // namespace hcnn::testing
