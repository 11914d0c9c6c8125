// hcnn_bench_throughput — images/s of CaffeNet and VGG-19 forward and forward+backward on the
// CPU at the given batch sizes, GFLOP/s per layer, and the same networks in libtorch measured
// in the same run, with the ratio hcnn / libtorch (> 1: hcnn is faster).
//
//   hcnn_bench_throughput [--net caffenet|vgg19|small|all] [--batch 1,32] [--repeats 3] [--layers]
//
// `small` is the Caltech-101 experiment's zoo::SmallD and zoo::SmallVDBN (3x64x64; the
// experiment trains them at batch 64).
//
// Each measurement is the median of `repeats` timed runs after one warm-up run; hcnn and
// libtorch runs alternate so that a noisy neighbour hurts both alike.
#include <hcnn/hcnn.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#ifdef HCNN_BENCH_LIBTORCH
#include <torch/torch.h>
#endif

#include <omp.h>

namespace {

using namespace hcnn;
using Clock = std::chrono::steady_clock;

double seconds(const std::function<void()>& f) {
  const auto start = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Median time of `repeats` runs of each function, alternating between them after a warm-up.
std::vector<double> median_times(const std::vector<std::function<void()>>& runs, int repeats) {
  std::vector<std::vector<double>> times(runs.size());
  for (const auto& run : runs) run();
  for (int r = 0; r < repeats; ++r)
    for (std::size_t i = 0; i < runs.size(); ++i) times[i].push_back(seconds(runs[i]));
  std::vector<double> medians;
  for (auto& t : times) {
    std::sort(t.begin(), t.end());
    medians.push_back(t[t.size() / 2]);
  }
  return medians;
}

#ifdef HCNN_BENCH_LIBTORCH
// The same network in libtorch, layer by layer, built from hcnn's own type so the two cannot
// drift apart. Parameters are random: only speed is compared here.
template <NetSpec N>
torch::nn::Sequential torch_net() {
  torch::nn::Sequential seq;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    auto add = [&]<std::size_t J>() {
      using L = typename N::template layer<J>;
      constexpr Shape in = N::template shape_before<J>();
      namespace nn = torch::nn;
      if constexpr (L::kind == "Conv") {
        seq->push_back(nn::Conv2d(nn::Conv2dOptions(in.c, L::out_channels, L::kernel)
                                      .stride(L::stride).padding(L::pad).groups(L::groups)));
        if constexpr (std::same_as<typename L::activation, ReLU>) seq->push_back(nn::ReLU(nn::ReLUOptions(true)));
      } else if constexpr (L::kind == "BatchNorm") {
        seq->push_back(nn::BatchNorm2d(nn::BatchNorm2dOptions(in.c).eps(L::eps)));
        if constexpr (std::same_as<typename L::activation, ReLU>) seq->push_back(nn::ReLU(nn::ReLUOptions(true)));
      } else if constexpr (L::kind == "MaxPool") {
        seq->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(L::kernel).stride(L::stride).padding(L::pad).ceil_mode(true)));
      } else if constexpr (L::kind == "LRN") {
        seq->push_back(nn::LocalResponseNorm(nn::LocalResponseNormOptions(L::size).alpha(L::alpha).beta(L::beta).k(L::k)));
      } else if constexpr (L::kind == "FC" || L::kind == "Softmax") {
        constexpr int out = N::template shape_before<J + 1>().c;
        if constexpr (J > 0 && N::template shape_before<J>().h * N::template shape_before<J>().w > 1)
          seq->push_back(nn::Flatten());
        seq->push_back(nn::Linear(in.size(), out));
        if constexpr (L::kind == "Softmax") seq->push_back(nn::Softmax(nn::SoftmaxOptions(1)));
        else seq->push_back(nn::ReLU(nn::ReLUOptions(true)));
      } else if constexpr (L::kind == "Dropout") {
        seq->push_back(nn::Dropout(nn::DropoutOptions(L::probability)));
      }
    };
    (add.template operator()<I>(), ...);
  }(std::make_index_sequence<N::depth>{});
  return seq;
}
#endif

template <NetSpec N>
void bench_network(const char* name, const std::vector<int>& batches, int repeats, bool per_layer) {
  Model<N> model(1);
  const std::vector<int> labels(256, 0);
#ifdef HCNN_BENCH_LIBTORCH
  auto torch_model = torch_net<N>();
#endif
  for (int batch : batches) {
    Tensor<float> x(batch, N::input_shape);
    Rng rng(batch);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(rng.normal(0.0, 50.0));
    const std::span<const int> y(labels.data(), std::size_t(batch));
    std::vector<std::function<void()>> forward{[&] { model.forward(x, Mode::test); }};
    std::vector<std::function<void()>> train{[&] {
      model.forward(x, Mode::train);
      model.backward(y);
    }};
#ifdef HCNN_BENCH_LIBTORCH
    auto tx = torch::from_blob(x.data(), {batch, N::input_shape.c, N::input_shape.h, N::input_shape.w}).clone();
    auto ty = torch::zeros({batch}, torch::kLong);
    forward.push_back([&] {
      torch::NoGradGuard guard;
      torch_model->eval();
      torch_model->forward(tx);
    });
    train.push_back([&] {
      torch_model->train();
      torch_model->zero_grad();
      auto p = torch_model->forward(tx);
      torch::nll_loss(torch::log(p), ty).backward();
    });
#endif
    for (auto [label, runs] : {std::pair{"forward", &forward}, std::pair{"forward+backward", &train}}) {
      const auto t = median_times(*runs, repeats);
      std::printf("%-9s batch %3d %-17s hcnn %9.2f img/s", name, batch, label, batch / t[0]);
      if (t.size() > 1) std::printf("   libtorch %9.2f img/s   hcnn/libtorch %5.2f", batch / t[1], t[1] / t[0]);
      std::printf("\n");
      std::fflush(stdout);
    }
    if (!per_layer) continue;
    // Per layer: the forward of each weight layer on the activations of a real pass.
    model.forward(x, Mode::test);
    std::vector<float> out, ws;
    const auto names = layer_names<N>();
    model.for_each_layer([&]<std::size_t I>(auto& layer) {
      using L = std::remove_cvref_t<decltype(layer)>;
      if constexpr (L::spec::weight_layer) {
        const float* in = I == 0 ? x.data() : model.template activation<I - 1>().data();
        out.resize(std::size_t(batch) * L::out_shape.size());
        ws.resize(workspace_elements<float>(layer, batch));
        const double flops = 2.0 * batch * L::spec::template macs<N::template shape_before<I>()>();
        const auto t = median_times({[&] { layer.forward(in, out.data(), batch, Mode::test, ws.data()); }}, repeats);
        std::printf("  %-9s %-10s batch %3d  %8.2f GFLOP/s\n", name, names[I].c_str(), batch, flops / t[0] * 1e-9);
      }
    });
  }
}

std::vector<int> parse_list(const char* text) {
  std::vector<int> values;
  for (const char* p = text; *p;) {
    values.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  std::string net = "all";
  std::vector<int> batches{1, 32};
  int repeats = 3;
  bool per_layer = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--net" && i + 1 < argc) net = argv[++i];
    else if (arg == "--batch" && i + 1 < argc) batches = parse_list(argv[++i]);
    else if (arg == "--repeats" && i + 1 < argc) repeats = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--layers") per_layer = true;
    else {
      std::fprintf(stderr, "usage: %s [--net caffenet|vgg19|small|all] [--batch 1,32] [--repeats 3] [--layers]\n", argv[0]);
      return arg == "--help" ? 0 : 2;
    }
  }
  std::printf("CPU: %s; compiled for %s (the CPU offers %s)\n", hcnn::cpu::cpu_model_name().c_str(),
              hcnn::cpu::compiled_simd(), hcnn::cpu::cpu_simd());
  std::printf("threads: %d (OpenMP)", omp_get_max_threads());
#ifdef HCNN_BENCH_LIBTORCH
  torch::set_num_threads(omp_get_max_threads());
  std::printf(", libtorch %s with %d threads", TORCH_VERSION, torch::get_num_threads());
#else
  std::printf(", built without libtorch: no ratio");
#endif
  std::printf("\n");
  if (net == "caffenet" || net == "all") bench_network<zoo::CaffeNet<1000>>("CaffeNet", batches, repeats, per_layer);
  if (net == "vgg19" || net == "all") bench_network<zoo::VGG19<1000>>("VGG-19", batches, repeats, per_layer);
  if (net == "small" || net == "all") {
    bench_network<zoo::SmallD<51>>("SmallD", batches, repeats, per_layer);
    bench_network<zoo::SmallVDBN<51>>("SmallVDBN", batches, repeats, per_layer);
  }
}
