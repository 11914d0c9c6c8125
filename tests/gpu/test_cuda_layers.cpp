// The Cuda backend against the CPU backend: every layer's forward and backward on the same
// weights and inputs, a whole CaffeNet-like training step (dropout and BatchNorm included),
// parameters moving between the backends exactly, and clear errors. Needs a GPU: without one
// the program exits with 77, CTest's skip.
//
// Tolerance: the largest difference at most `tolerance` times the largest magnitude of the
// CPU's values (at least 1). cuDNN's algorithms sum in other orders than Eigen (and FFT or
// Winograd algorithms round differently), so 1e-4 for FP32 and 1e-2 for TF32.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <hcnn/backend/cuda.hpp>
#include <hcnn/hcnn.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "../parameter_values.hpp"
#include "../temp_dir.hpp"

using namespace hcnn;

namespace {

constexpr double fp32_tolerance = 1e-4;

// The first n values of a buffer of any element type, as floats.
template <class V>
std::vector<float> host_values(const V& buffer, std::size_t n) {
  std::vector<float> all;
  read_on_host(buffer, [&](auto v) { all.assign(v.begin(), v.begin() + static_cast<long>(n)); });
  return all;
}

// Host floats on the device as G (bf16 rounds them).
template <class G = float>
Buffer<G, Cuda> on_device(const std::vector<float>& host) {
  const std::vector<G> stored(host.begin(), host.end());
  Buffer<G, Cuda> device;
  device.copy_from_host(stored.data(), stored.size());
  return device;
}

// The values as G stores them (bf16: rounded to 8 bits of mantissa), back in float.
template <class G>
std::vector<float> stored_as(std::vector<float> values) {
  for (auto& v : values) v = float(G(v));
  return values;
}

void require_close(const std::vector<float>& cpu, const std::vector<float>& gpu, double tolerance, const char* what) {
  REQUIRE(cpu.size() == gpu.size());
  double largest = 1.0, worst = 0.0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    largest = std::max(largest, std::abs(double(cpu[i])));
    const double d = std::abs(double(cpu[i]) - double(gpu[i]));
    if (!(d <= worst)) {  // NaN counts as worst
      worst = d;
      at = i;
    }
  }
  INFO(what << ": largest difference " << worst << " at " << at << " (cpu " << cpu[at] << ", gpu " << gpu[at]
            << "), largest magnitude " << largest);
  CHECK(worst <= tolerance * largest);
}

std::vector<float> normal_values(std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(rng.normal());
  return v;
}

// Runs layer Spec at input shape In on both backends with the same parameters (and dropout
// stream), input and output gradient, and compares the output, the input gradient and every
// learnable parameter's gradient (and, for layer state such as BatchNorm's sums, the values).
// G is the GPU layer's element type: for bf16 the CPU layer gets the same rounded parameters
// and inputs, so what differs is how each computes.
template <class Spec, Shape In, class G = float>
void compare_layer(int n, Mode mode, double tolerance = fp32_tolerance) {
  using CpuLayer = LayerImpl<Spec, In, float, Cpu>;
  using GpuLayer = LayerImpl<Spec, In, G, Cuda>;
  constexpr Shape out_shape = CpuLayer::out_shape;
  CpuLayer cpu;
  GpuLayer gpu;
  Rng rng(17);
  cpu.fill(rng, {.weights = Filler::gaussian(0.3f), .classifier = Filler::gaussian(0.3f), .bias = 0.1f}, false);
  for (std::size_t i = 0; i < cpu.params().size(); ++i) {
    write_on_host(cpu.params()[i].value, [](auto v) {
      for (auto& value : v) value = float(G(value));
    });
    read_on_host(cpu.params()[i].value, [&](auto v) {
      write_on_host(gpu.params()[i].value, [&](auto w) { std::copy(v.begin(), v.end(), w.begin()); });
    });
  }
  if constexpr (requires { cpu.stream(); }) gpu.stream() = cpu.stream();

  const std::size_t in_count = std::size_t(n) * In.size(), out_count = std::size_t(n) * out_shape.size();
  const std::vector<float> x = stored_as<G>(normal_values(in_count, 3)), dy = stored_as<G>(normal_values(out_count, 4));
  std::vector<float> y(out_count), dout = dy, dx(in_count), ws(workspace_elements<float>(cpu, n));
  const Buffer<G, Cuda> gx = on_device<G>(x);
  Buffer<G, Cuda> gy(out_count), gdout = on_device<G>(dy), gdx(in_count), gws(workspace_elements<G>(gpu, n));

  cpu.forward(x.data(), y.data(), n, mode, ws.data());
  gpu.forward(gx.data(), gy.data(), n, mode, gws.data());
  require_close(y, host_values(gy, out_count), tolerance, "output");

  cpu.backward(x.data(), y.data(), dout.data(), dx.data(), n, ws.data());
  gpu.backward(gx.data(), gy.data(), gdout.data(), gdx.data(), n, gws.data());
  require_close(dx, host_values(gdx, in_count), tolerance, "input gradient");
  for (std::size_t i = 0; i < cpu.params().size(); ++i) {
    const auto& p = cpu.params()[i];
    INFO("blob " << p.name);
    require_close(host_values(p.value, p.size()), host_values(gpu.params()[i].value, p.size()), tolerance, "value");
    if (p.learnable)
      require_close(host_values(p.grad, p.size()), host_values(gpu.params()[i].grad, p.size()), tolerance, "gradient");
  }
}

// A CaffeNet in miniature: grouped, strided convolutions, LRN, Caffe's ceil pooling, BatchNorm,
// average pooling with padding, dropout and the classifier.
using Mini = Net<Input<3, 23, 23>, Conv<8, 5, 2, 1>, LRN<5>, MaxPool<3, 2>, Conv<12, 3, 1, 1, 2>, BatchNorm<ReLU>,
                 AvgPool<3, 2, 1>, FC<16>, Dropout<0.5f>, Softmax<5>>;

}  // namespace

TEST_CASE("Convolutions agree with the CPU backend", "[cuda][conv]") {
  compare_layer<Conv<6, 3, 1, 1>, Shape{4, 9, 9}>(3, Mode::train);
  compare_layer<Conv<8, 5, 2, 1, 2, Identity>, Shape{4, 11, 11}>(2, Mode::train);  // groups, stride, no ReLU
  compare_layer<Conv<16, 3, 1, 1>, Shape{32, 8, 8}>(2, Mode::train);               // the CPU's Winograd path
  compare_layer<Conv<4, 11, 4>, Shape{3, 27, 27}>(2, Mode::test);
  compare_layer<Conv<5, 1>, Shape{6, 4, 4}>(3, Mode::train);  // pointwise
}

TEST_CASE("Inner products and the classifier agree with the CPU backend", "[cuda][fc]") {
  compare_layer<FC<7>, Shape{3, 4, 4}>(5, Mode::train);
  compare_layer<FC<9, Identity>, Shape{20, 1, 1}>(1, Mode::train);
  compare_layer<Softmax<6>, Shape{2, 3, 3}>(4, Mode::train);  // the general backward, through the Jacobian

  // The fused softmax + cross-entropy gradient from host labels.
  using S = Softmax<4>;
  constexpr Shape in{10, 1, 1};
  LayerImpl<S, in, float, Cpu> cpu;
  LayerImpl<S, in, float, Cuda> gpu;
  Rng rng(2);
  cpu.fill(rng, {.classifier = Filler::gaussian(0.5f)}, true);
  for (std::size_t i = 0; i < 2; ++i)
    read_on_host(cpu.params()[i].value, [&](auto v) {
      write_on_host(gpu.params()[i].value, [&](auto w) { std::copy(v.begin(), v.end(), w.begin()); });
    });
  const int n = 6;
  const std::vector<int> labels{0, 3, 1, 1, 2, 3};
  const std::vector<float> x = normal_values(n * 10, 9);
  std::vector<float> p(n * 4), dx(n * 10), ws(workspace_elements<float>(cpu, n));
  const auto gx = on_device(x);
  Buffer<float, Cuda> gp(n * 4), gdx(n * 10), gws(workspace_elements<float>(gpu, n));
  cpu.forward(x.data(), p.data(), n, Mode::train, ws.data());
  gpu.forward(gx.data(), gp.data(), n, Mode::train, gws.data());
  require_close(p, host_values(gp, p.size()), fp32_tolerance, "probabilities");
  cpu.backward_from_labels(x.data(), p.data(), labels.data(), dx.data(), n, ws.data());
  gpu.backward_from_labels(gx.data(), gp.data(), labels.data(), gdx.data(), n, gws.data());
  require_close(dx, host_values(gdx, dx.size()), fp32_tolerance, "input gradient");
  require_close(host_values(cpu.params()[0].grad, 40), host_values(gpu.params()[0].grad, 40), fp32_tolerance, "dW");
}

TEST_CASE("Pooling keeps Caffe's ceil rounding and clipped windows on the GPU", "[cuda][pool]") {
  compare_layer<MaxPool<3, 2>, Shape{3, 6, 6}>(2, Mode::train);   // ceil: 3x3 out, the last window clipped
  compare_layer<MaxPool<3, 2, 1>, Shape{2, 7, 7}>(2, Mode::train);
  compare_layer<AvgPool<3, 2, 1>, Shape{2, 6, 6}>(2, Mode::train);  // divisors clipped at H + pad
  compare_layer<AvgPool<2, 2>, Shape{4, 5, 5}>(3, Mode::train);
}

TEST_CASE("LRN, dropout and BatchNorm agree with the CPU backend", "[cuda][lrn][dropout][batchnorm]") {
  compare_layer<LRN<5>, Shape{7, 3, 3}>(2, Mode::train);
  compare_layer<LRN<3, 2.0f, 0.75f, 1.5f>, Shape{4, 2, 3}>(2, Mode::train);
  compare_layer<Dropout<0.5f>, Shape{5, 3, 3}>(3, Mode::train);  // the same masks, bit for bit
  compare_layer<Dropout<0.3f>, Shape{7, 1, 1}>(2, Mode::test);
  compare_layer<BatchNorm<ReLU>, Shape{3, 4, 4}>(4, Mode::train);  // batch statistics, Caffe's moving sums
  compare_layer<BatchNorm<>, Shape{3, 2, 2}>(2, Mode::test);
}

TEST_CASE("TF32 convolutions stay within TF32's rounding of FP32", "[cuda][conv][tf32]") {
  cuda::context().set_tf32(true);
  compare_layer<Conv<16, 3, 1, 1>, Shape{32, 8, 8}>(2, Mode::train, 1e-2);
  compare_layer<FC<32>, Shape{64, 2, 2}>(4, Mode::train, 1e-2);
  cuda::context().set_tf32(false);
}

// BF16 storage: the GPU layer keeps bf16 values, the CPU layer computes in float from the same
// rounded ones. Each bf16 result is rounded to 8 bits of mantissa (2^-9 relative) and some
// twice (a convolution's output, then its bias): 2e-2 of the largest value.
constexpr double bf16_tolerance = 2e-2;

TEST_CASE("BF16 storage: each layer agrees with the CPU backend", "[cuda][bf16]") {
  compare_layer<Conv<6, 3, 1, 1>, Shape{4, 9, 9}, cuda::bf16>(3, Mode::train, bf16_tolerance);
  compare_layer<Conv<8, 5, 2, 1, 2, Identity>, Shape{4, 11, 11}, cuda::bf16>(2, Mode::train, bf16_tolerance);
  compare_layer<FC<7>, Shape{3, 4, 4}, cuda::bf16>(5, Mode::train, bf16_tolerance);
  compare_layer<Softmax<6>, Shape{2, 3, 3}, cuda::bf16>(4, Mode::train, bf16_tolerance);
  compare_layer<MaxPool<3, 2>, Shape{3, 6, 6}, cuda::bf16>(2, Mode::train, bf16_tolerance);
  compare_layer<AvgPool<3, 2, 1>, Shape{2, 6, 6}, cuda::bf16>(2, Mode::train, bf16_tolerance);
  compare_layer<LRN<5>, Shape{7, 3, 3}, cuda::bf16>(2, Mode::train, bf16_tolerance);
  compare_layer<Dropout<0.5f>, Shape{5, 3, 3}, cuda::bf16>(3, Mode::train, bf16_tolerance);
  compare_layer<BatchNorm<ReLU>, Shape{3, 4, 4}, cuda::bf16>(4, Mode::train, bf16_tolerance);  // float moving sums
  compare_layer<BatchNorm<>, Shape{3, 2, 2}, cuda::bf16>(2, Mode::test, bf16_tolerance);
}

TEST_CASE("BF16 storage: the solver keeps FP32 master weights", "[cuda][bf16][sgd]") {
  Param<cuda::bf16, Cuda> p(BlobSpec{.name = "weight", .dims = {4, 1, 1, 1}});
  write_on_host(p.value, [](auto v) { std::fill(v.begin(), v.end(), cuda::bf16(1.0f)); });
  write_on_host(p.grad, [](auto v) { std::fill(v.begin(), v.end(), cuda::bf16(1.0f)); });
  const std::vector<NamedParam<cuda::bf16, Cuda>> params{{"layer", &p}};
  SgdSolver<cuda::bf16, Cuda> solver(Sgd{.lr = 1e-4f, .momentum = 0.0f, .weight_decay = 0.0f});
  // 100 updates of 1e-4, each under half of bf16's spacing at 1 (2^-8): in bf16 alone the
  // weight would stay 1; the master reaches 0.99, whose rounding is 253/256.
  for (int i = 0; i < 100; ++i) solver.step(params);
  CHECK(host_values(p.value, 4) == std::vector<float>(4, 253.0f / 256.0f));
  // Weights written from outside (a copy, an import) are taken as they are, not reverted to
  // the master.
  write_on_host(p.value, [](auto v) { std::fill(v.begin(), v.end(), cuda::bf16(0.5f)); });
  solver.config().lr = 0.0f;
  solver.step(params);
  CHECK(host_values(p.value, 4) == std::vector<float>(4, 0.5f));
}

namespace {
// Mini without its BatchNorm, which BF16 storage does not have.
using NoBatchNorm = Net<Input<3, 23, 23>, Conv<8, 5, 2, 1>, LRN<5>, MaxPool<3, 2>, Conv<12, 3, 1, 1, 2>,
                        AvgPool<3, 2, 1>, FC<16>, Dropout<0.5f>, Softmax<5>>;
}  // namespace

TEST_CASE("BF16 storage: BatchNorm's moving sums accumulate in float", "[cuda][bf16][batchnorm]") {
  // 300 training passes of the same batch: the sums grow to about 260 times the batch's
  // statistics, so late increments are about one bf16 unit of the sum (summed in bf16 each
  // would be rounded by up to half of itself); the float copies keep them as the float layer's.
  using Norm = Net<Input<2, 3, 3>, BatchNorm<>, FC<3>, Softmax<3>>;
  Model<Norm, Cuda> full(1);
  Model<Norm, Cuda, cuda::bf16> half(1);
  const std::vector<float> x = stored_as<cuda::bf16>(normal_values(4 * 18, 21));
  Tensor<float, Cuda> fx(4, Norm::input_shape);
  fx.buffer().copy_from_host(x.data(), x.size());
  Tensor<cuda::bf16, Cuda> hx(4, Norm::input_shape);
  hx.buffer() = on_device<cuda::bf16>(x);
  for (int pass = 0; pass < 300; ++pass) {
    full.forward(fx, Mode::train);
    half.forward(hx, Mode::train);
  }
  const auto& full_blobs = full.layer<0>().params();
  const auto& half_blobs = half.layer<0>().params();
  for (std::size_t b = 0; b < 3; ++b) {  // mean sums, variance sums, factor
    INFO("blob " << full_blobs[b].name);
    require_close(host_values(full_blobs[b].value, full_blobs[b].size()),
                  host_values(half_blobs[b].value, half_blobs[b].size()), bf16_tolerance, "moving sums");
  }
}

TEST_CASE("BF16 storage: a network trains as its float twin does", "[cuda][bf16][model]") {
  Model<NoBatchNorm, Cuda> full(7);
  Model<NoBatchNorm, Cuda, cuda::bf16> half(7);  // the same dropout streams
  copy_parameters(full, half);
  copy_parameters(half, full);  // both start from the bf16-rounded weights
  SgdSolver<float, Cuda> full_solver(Sgd{.lr = 0.05f});
  SgdSolver<cuda::bf16, Cuda> half_solver(Sgd{.lr = 0.05f});
  const int n = 6;
  const std::vector<int> labels{0, 1, 2, 3, 4, 0};
  const std::vector<float> x = stored_as<cuda::bf16>(normal_values(n * NoBatchNorm::input_shape.size(), 11));
  Tensor<float, Cuda> fx(n, NoBatchNorm::input_shape);
  fx.buffer().copy_from_host(x.data(), x.size());
  Tensor<cuda::bf16, Cuda> hx(n, NoBatchNorm::input_shape);
  hx.buffer() = on_device<cuda::bf16>(x);
  for (int step = 0; step < 3; ++step) {
    INFO("step " << step);
    full.forward(fx, Mode::train);
    half.forward(hx, Mode::train);
    CHECK(half.loss(labels) == Approx(full.loss(labels)).epsilon(bf16_tolerance));
    full.backward(labels);
    half.backward(labels);
    full_solver.step(full.parameters());
    half_solver.step(half.parameters());
  }
  const auto halves = testing::parameter_values(half);
  require_close(testing::parameter_values(full), std::vector<float>(halves.begin(), halves.end()), bf16_tolerance,
                "parameters after three steps");
}

TEST_CASE("BF16 storage: checkpoints hold the master weights, so training resumes exactly", "[cuda][bf16][checkpoint]") {
  hcnn::testing::TempDir dir;
  using Small = Net<Input<3, 23, 23>, Conv<8, 5, 2, 1>, MaxPool<3, 2>, FC<16>, Dropout<0.5f>, Softmax<5>>;
  const int n = 4;
  const std::vector<int> labels{0, 1, 2, 3};
  Tensor<cuda::bf16, Cuda> x(n, Small::input_shape);
  x.buffer() = on_device<cuda::bf16>(normal_values(n * Small::input_shape.size(), 13));
  auto step = [&](auto& model, auto& solver) {
    model.forward(x, Mode::train);
    model.backward(labels);
    solver.step(model.parameters());
  };
  auto all_values = [](const auto& buffers) {
    std::vector<float> all;
    for (const auto& b : buffers) {
      const auto v = host_values(b, b.size());
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  Model<Small, Cuda, cuda::bf16> straight(3);
  SgdSolver<cuda::bf16, Cuda> straight_solver(Sgd{.lr = 0.05f});
  step(straight, straight_solver);
  step(straight, straight_solver);
  save_checkpoint(dir / "bf16.ckpt", straight, &straight_solver, 2);

  Model<Small, Cuda, cuda::bf16> resumed(9);
  SgdSolver<cuda::bf16, Cuda> resumed_solver;
  load_checkpoint(dir / "bf16.ckpt", resumed, &resumed_solver);
  CHECK(testing::parameter_values(resumed) == testing::parameter_values(straight));
  CHECK(all_values(resumed_solver.master()) == all_values(straight_solver.master()));
  CHECK(all_values(resumed_solver.history()) == all_values(straight_solver.history()));
  CHECK(resumed.random_streams()[0].stream->step == straight.random_streams()[0].stream->step);

  // A float checkpoint of the master weights: a float model loads it, and its weights round to
  // the bf16 model's.
  Model<Small, Cuda> wide(5);
  load_checkpoint(dir / "bf16.ckpt", wide);
  const auto halves = testing::parameter_values(straight);
  CHECK(stored_as<cuda::bf16>(testing::parameter_values(wide)) == std::vector<float>(halves.begin(), halves.end()));
  CHECK(testing::parameter_values(wide) == all_values(straight_solver.master()));

  // The next step from either is the same (to the rounding of cuDNN's algorithm choice, which
  // each model makes for itself).
  step(straight, straight_solver);
  step(resumed, resumed_solver);
  const auto a = testing::parameter_values(straight), b = testing::parameter_values(resumed);
  require_close(std::vector<float>(a.begin(), a.end()), std::vector<float>(b.begin(), b.end()), 1e-3,
                "parameters one step after the resume");
}

// `steps` SGD steps in training mode of network N from one seed on both backends: the same
// initial weights exactly, then the same losses and weights to within the tolerance.
template <class N>
void compare_training(std::uint64_t seed, const std::vector<float>& x, const std::vector<int>& labels, int steps) {
  Model<N, Cpu> cpu(seed);
  Model<N, Cuda> gpu(seed);
  REQUIRE(testing::parameter_values(gpu) == testing::parameter_values(cpu));  // the same fillers, exactly
  SgdSolver<float, Cpu> cpu_solver(Sgd{.lr = 0.05f});
  SgdSolver<float, Cuda> gpu_solver(Sgd{.lr = 0.05f});
  const int n = int(labels.size());
  Tensor<float, Cuda> gx(n, N::input_shape);
  gx.buffer().copy_from_host(x.data(), x.size());
  for (int step = 0; step < steps; ++step) {
    INFO("step " << step);
    cpu.forward(x.data(), n, Mode::train);
    gpu.forward(gx, Mode::train);
    CHECK(gpu.loss(labels) == Approx(cpu.loss(labels)).epsilon(1e-4));
    cpu.backward(labels);
    gpu.backward(labels);
    cpu_solver.step(cpu.parameters());
    gpu_solver.step(gpu.parameters());
    require_close(testing::parameter_values(cpu), testing::parameter_values(gpu), 1e-4, "parameters after the step");
  }
}

TEST_CASE("A training step of a whole network agrees with the CPU backend, dropout included", "[cuda][model]") {
  compare_training<Mini>(7, normal_values(6 * Mini::input_shape.size(), 11), {0, 1, 2, 3, 4, 0}, 3);
}

namespace {
// Bases of different architectures and input sizes (centre crops of the shared 9x9 input),
// with dropout at their tops and a BatchNorm in one.
using A = Net<Input<2, 9, 9>, Conv<4, 3>, MaxPool<2, 2>, FC<6>, Dropout<0.5f>, FC<5>, Dropout<0.5f>, Softmax<3>>;
using B = Net<Input<2, 7, 7>, Conv<3, 3, 1, 1, 1, Identity>, BatchNorm<ReLU>, MaxPool<2, 2>, FC<5>, Dropout<0.5f>, FC<4>,
              Dropout<0.5f>, Softmax<3>>;
using Joint = Combination<A, B, FC<6>, Softmax<4>>;
}  // namespace

TEST_CASE("A Combination's and an Average's training steps agree with the CPU backend", "[cuda][combination]") {
  // Crops, concatenation and the gradient's split all run on the device.
  const int n = 5;
  const std::vector<float> x = normal_values(n * Joint::input_shape.size(), 12);
  compare_training<Joint>(5, x, {0, 1, 2, 3, 1}, 2);

  Tensor<float, Cuda> gx(n, Joint::input_shape);
  gx.buffer().copy_from_host(x.data(), x.size());
  Model<Average<A, B>, Cpu> cpu_average(8);
  Model<Average<A, B>, Cuda> gpu_average(8);
  cpu_average.forward(x.data(), n);
  gpu_average.forward(gx);
  require_close(host_values(cpu_average.output().buffer(), n * 3), host_values(gpu_average.output().buffer(), n * 3),
                fp32_tolerance, "averaged probabilities");
}

namespace {
// The same steps taken ordinarily by one model and through a cuda::TrainingGraph by another
// from the same seed: the same losses and parameters, and the graph captured and replayed when
// it should. The ordinary model runs first: any pass on the thread counts as a change that
// makes the graph capture anew. G: the models' element type.
template <class NetT, class G = float>
void compare_graph_steps(int n, std::uint64_t seed, const std::vector<int>& labels) {
  using M = Model<NetT, Cuda, G>;
  using Run = typename cuda::TrainingGraph<M>::Run;
  // The twins' convolutions may use other algorithms (each model finds its own).
  const double tolerance = std::same_as<G, float> ? 1e-4 : bf16_tolerance;
  struct Step {
    int batch;
    float lr;
    bool evaluate_first;  // another pass through the model before the step
  };
  const std::vector<Step> steps{{n, 0.05f, false}, {n, 0.05f, false}, {n, 0.05f, false},
                                {n, 0.02f, false},  // a launch reads the learning rate of its moment
                                {n, 0.02f, true},     {n, 0.02f, false},
                                {n - 2, 0.02f, false},  // a new batch size: ordinary, then captured
                                {n - 2, 0.02f, false}, {n, 0.02f, false}};
  const std::vector<Run> expected{Run::ordinary, Run::captured, Run::replayed, Run::replayed, Run::captured,
                                  Run::replayed, Run::ordinary, Run::captured, Run::captured};
  auto inputs = [&](std::size_t i) {
    Tensor<G, Cuda> x(steps[i].batch, NetT::input_shape);
    x.buffer() = on_device<G>(normal_values(std::size_t(steps[i].batch) * NetT::input_shape.size(), 30 + i));
    return x;
  };
  auto labels_of = [&](std::size_t i) { return std::span<const int>(labels.data(), std::size_t(steps[i].batch)); };

  M ordinary(seed);
  SgdSolver<G, Cuda> ordinary_solver;
  const auto params = ordinary.parameters();
  std::vector<double> losses;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const auto x = inputs(i);
    if (steps[i].evaluate_first) ordinary.forward(x, Mode::test);
    ordinary_solver.config().lr = steps[i].lr;
    ordinary.forward(x, Mode::train);
    losses.push_back(ordinary.loss(labels_of(i)));
    ordinary.backward(labels_of(i));
    ordinary_solver.step(params);
  }

  M graphed(seed);
  SgdSolver<G, Cuda> graphed_solver;
  cuda::TrainingGraph graph(graphed, graphed_solver);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    INFO("step " << i);
    const auto x = inputs(i);
    if (steps[i].evaluate_first) graphed.forward(x, Mode::test);
    graphed_solver.config().lr = steps[i].lr;
    graph.run(x, labels_of(i));
    INFO("capture error: " << graph.capture_error());
    CHECK(graph.last_run() == expected[i]);
    CHECK(graphed.loss(labels_of(i)) == Approx(losses[i]).epsilon(tolerance));
  }
  CHECK(graph.captures() == 4);
  const auto ordinary_values = testing::parameter_values(ordinary), graphed_values = testing::parameter_values(graphed);
  require_close(std::vector<float>(ordinary_values.begin(), ordinary_values.end()),
                std::vector<float>(graphed_values.begin(), graphed_values.end()), tolerance, "parameters after the steps");
  const auto a = ordinary.random_streams(), b = graphed.random_streams();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].stream->step == b[i].stream->step);
}
}  // namespace

TEST_CASE("Training steps replayed from a CUDA graph equal ordinary steps", "[cuda][graph]") {
  SECTION("a CaffeNet in miniature, dropout and BatchNorm included") {
    compare_graph_steps<Mini>(6, 7, {0, 1, 2, 3, 4, 0});
  }
  SECTION("a Combination") { compare_graph_steps<Joint>(5, 8, {0, 1, 2, 3, 1}); }
  SECTION("BF16 storage, through FP32 master weights") {
    compare_graph_steps<NoBatchNorm, cuda::bf16>(6, 7, {0, 1, 2, 3, 4, 0});
  }
  SECTION("bad labels are refused before a launch") {
    Model<Mini, Cuda> model(1);
    SgdSolver<float, Cuda> solver;
    cuda::TrainingGraph graph(model, solver);
    Tensor<float, Cuda> x(2, Mini::input_shape);
    x.buffer().fill(0.0f);
    const std::vector<int> good{0, 1}, bad{0, 5};
    graph.run(x, good);
    graph.run(x, good);
    CHECK(graph.last_run() == cuda::TrainingGraph<Model<Mini, Cuda>>::Run::captured);
    CHECK_THROWS_WITH(graph.run(x, bad), Catch::Contains("label 5 of sample 1 is outside [0, 5)"));
    CHECK_THROWS_AS(graph.run(Tensor<float, Cuda>(2, Shape{3, 22, 22}), good), ShapeError);
  }
}

namespace {
// Four classes of 3x23x23 noise, each with a brighter channel: what a few SGD steps can learn.
class BrightChannel {
 public:
  [[nodiscard]] std::size_t size() const { return 48; }
  [[nodiscard]] Shape shape() const { return Mini::input_shape; }
  [[nodiscard]] int label(std::size_t i) const { return int(i % 4); }
  void load(std::size_t i, float* out, Rng*) const {
    Rng noise(5, i);
    for (int c = 0; c < 3; ++c)
      for (int j = 0; j < 23 * 23; ++j)
        out[c * 23 * 23 + j] = float(noise.normal(0.0, 0.5)) + (c == label(i) % 3 ? 1.0f : 0.0f);
  }
};
}  // namespace

TEST_CASE("The Trainer and evaluate run a Cuda model as they run a CPU one", "[cuda][train]") {
  const BrightChannel data;
  Model<Mini, Cpu> cpu(9);
  Model<Mini, Cuda> gpu(9);
  // A learning rate that halves every three steps: graph launches read the rate of their step.
  const TrainOptions options{.batch_size = 12, .schedule = Schedule::step(3, 0.5), .progress = ProgressStyle::none};
  const auto cpu_reports = Trainer(cpu, Sgd{.lr = 0.01f}, strategy::whole_network, options).fit(data, 2);
  const auto gpu_reports = Trainer(gpu, Sgd{.lr = 0.01f}, strategy::whole_network, options).fit(data, 2);
  REQUIRE(gpu_reports.size() == 2);
  CHECK(gpu_reports[1].train_loss == Approx(cpu_reports[1].train_loss).epsilon(1e-3));
  require_close(testing::parameter_values(cpu), testing::parameter_values(gpu), 1e-3, "parameters after two epochs");
  // The Trainer's steps ran from a CUDA graph; ordinary steps give the same.
  TrainOptions ordinary_steps = options;
  ordinary_steps.graph_steps = false;
  Model<Mini, Cuda> ordinary(9);
  const auto ordinary_reports = Trainer(ordinary, Sgd{.lr = 0.01f}, strategy::whole_network, ordinary_steps).fit(data, 2);
  CHECK(gpu_reports[1].train_loss == Approx(ordinary_reports[1].train_loss).epsilon(1e-4));
  require_close(testing::parameter_values(ordinary), testing::parameter_values(gpu), 1e-4,
                "parameters after graph steps and ordinary ones");
  const Accuracy on_cpu = evaluate(cpu, data, 16), on_gpu = evaluate(gpu, data, 16);
  CHECK(on_gpu.count == 48);
  CHECK(on_gpu.loss == Approx(on_cpu.loss).epsilon(1e-3));
}

namespace {
// Four classes of 2x9x9 noise, each with a brighter quadrant (Joint's input).
class BrightQuadrant {
 public:
  [[nodiscard]] std::size_t size() const { return 36; }
  [[nodiscard]] Shape shape() const { return Joint::input_shape; }
  [[nodiscard]] int label(std::size_t i) const { return int(i % 4); }
  void load(std::size_t i, float* out, Rng*) const {
    Rng noise(6, i);
    for (int c = 0; c < 2; ++c)
      for (int h = 0; h < 9; ++h)
        for (int w = 0; w < 9; ++w) {
          const bool bright = (h < 5) == (label(i) < 2) && (w < 5) == (label(i) % 2 == 0);
          out[(c * 9 + h) * 9 + w] = (bright ? 1.0f : 0.0f) + float(noise.normal(0.0, 0.3));
        }
  }
};
}  // namespace

TEST_CASE("A Cuda Combination with frozen bases trains from cached features as a CPU one does", "[cuda][train][cache]") {
  const BrightQuadrant data;
  Model<Joint, Cpu> cpu(4);
  Model<Joint, Cuda> gpu(4);
  const TrainOptions options{.batch_size = 12, .views = 3, .seed = 2, .progress = ProgressStyle::none};
  Trainer cpu_trainer(cpu, Sgd{.lr = 0.1f}, strategy::combination_layers, options);
  Trainer gpu_trainer(gpu, Sgd{.lr = 0.1f}, strategy::combination_layers, options);
  const auto cpu_reports = cpu_trainer.fit(data, 3, data);
  const auto gpu_reports = gpu_trainer.fit(data, 3, data);
  CHECK(gpu_trainer.used_cache());
  REQUIRE(gpu_reports.size() == 3);
  REQUIRE(gpu_reports[2].test.has_value());
  CHECK(gpu_reports[2].train_loss == Approx(cpu_reports[2].train_loss).epsilon(1e-3));
  CHECK(gpu_reports[2].test->loss == Approx(cpu_reports[2].test->loss).epsilon(1e-3));
  require_close(testing::parameter_values(cpu), testing::parameter_values(gpu), 1e-3, "parameters after three epochs");

  // Evaluating and predicting from a bank's features equals recomputing the bases.
  FeatureBank<float> bank;
  const Accuracy recomputed = evaluate(gpu, data, 12), from_bank = evaluate(gpu, data, bank, 12);
  CHECK(from_bank.count == 36);
  CHECK(from_bank.loss == Approx(recomputed.loss).epsilon(1e-5));
  CHECK(from_bank.top1 == recomputed.top1);
  require_close(predict(cpu, data, bank, 12), predict(gpu, data, bank, 12), 1e-4, "predicted probabilities");
}

TEST_CASE("BF16 storage: the Trainer trains a bf16 model as it trains a float one", "[cuda][bf16][train]") {
  const BrightChannel images;
  const TrainOptions options{.batch_size = 12, .progress = ProgressStyle::none};
  Model<NoBatchNorm, Cuda> full(9);
  Model<NoBatchNorm, Cuda, cuda::bf16> half(9);
  copy_parameters(full, half);
  copy_parameters(half, full);
  const auto full_reports = Trainer(full, Sgd{.lr = 0.01f}, strategy::whole_network, options).fit(images, 2, images);
  const auto half_reports = Trainer(half, Sgd{.lr = 0.01f}, strategy::whole_network, options).fit(images, 2, images);
  REQUIRE(half_reports.size() == 2);
  CHECK(half_reports[1].train_loss == Approx(full_reports[1].train_loss).epsilon(bf16_tolerance));
  CHECK(half_reports[1].test->loss == Approx(full_reports[1].test->loss).epsilon(bf16_tolerance));

  // From cached features: a Combination of BatchNorm-free bases with frozen bases.
  using C = Net<Input<2, 7, 7>, Conv<3, 3, 1, 1>, MaxPool<2, 2>, FC<5>, Dropout<0.5f>, FC<4>, Dropout<0.5f>, Softmax<3>>;
  using Pair = Combination<A, C, FC<6>, Softmax<4>>;
  const BrightQuadrant quadrants;
  const TrainOptions cached{.batch_size = 12, .views = 3, .seed = 2, .progress = ProgressStyle::none};
  Model<Pair, Cuda> full_pair(4);
  Model<Pair, Cuda, cuda::bf16> half_pair(4);
  copy_parameters(full_pair, half_pair);
  copy_parameters(half_pair, full_pair);
  Trainer full_trainer(full_pair, Sgd{.lr = 0.1f}, strategy::combination_layers, cached);
  Trainer half_trainer(half_pair, Sgd{.lr = 0.1f}, strategy::combination_layers, cached);
  const auto full_pair_reports = full_trainer.fit(quadrants, 3, quadrants);
  const auto half_pair_reports = half_trainer.fit(quadrants, 3, quadrants);
  CHECK(half_trainer.used_cache());
  CHECK(half_pair_reports[2].test->loss == Approx(full_pair_reports[2].test->loss).epsilon(bf16_tolerance));
}

TEST_CASE("Parameters move between the backends exactly: copies and checkpoints", "[cuda][checkpoint]") {
  hcnn::testing::TempDir dir;
  Model<Mini, Cuda> gpu(3);
  Model<Mini, Cpu> cpu(4);
  copy_parameters(gpu, cpu);
  CHECK(testing::parameter_values(cpu) == testing::parameter_values(gpu));
  save_checkpoint(dir / "gpu.ckpt", gpu, nullptr, 0);
  Model<Mini, Cpu> loaded(5);
  load_checkpoint(dir / "gpu.ckpt", loaded);
  CHECK(testing::parameter_values(loaded) == testing::parameter_values(gpu));
  Model<Mini, Cuda> back(6);
  load_checkpoint(dir / "gpu.ckpt", back);
  CHECK(testing::parameter_values(back) == testing::parameter_values(gpu));
  CHECK(!non_finite_parameter(back.parameters()));
}

TEST_CASE("Errors on the GPU are clear exceptions", "[cuda][errors]") {
  Model<Mini, Cuda> gpu(1);
  Tensor<float, Cuda> wrong(2, Shape{3, 22, 22});
  CHECK_THROWS_AS(gpu.forward(wrong), ShapeError);
  const std::vector<int> labels{0, 1};
  CHECK_THROWS_WITH(gpu.backward(labels), Catch::Contains("before any forward pass"));
  CHECK_THROWS_AS((Buffer<float, Cuda>(std::size_t{1} << 50)), CudaError);
}

int main(int argc, char** argv) {
  if (cuda::device_count() == 0) {
    std::printf("skipped: no NVIDIA GPU on this machine (the Cuda layer tests need one)\n");
    return 77;
  }
  std::printf("device 0: %s\n", cuda::device_name(0).c_str());
  return Catch::Session().run(argc, argv);
}
