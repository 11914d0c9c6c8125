// hcnn_bench_throughput — images/s of CaffeNet and VGG-19 inference (forward) and training step
// (forward, backward and the SGD update) on the CPU at the given batch sizes, GFLOP/s per
// layer (forward and backward) against the machine's measured FMA peak, and the same networks in libtorch measured in
// the same run, with the ratio hcnn / libtorch (> 1: hcnn is faster).
//
//   hcnn_bench_throughput [--net caffenet|vgg19|small|all] [--batch 1,32] [--repeats 3] [--layers]
//                         [--no-check] [--memory]
//
// `small` is the Caltech-101 experiment's zoo::SmallD, zoo::SmallVD and zoo::SmallVDBN
// (3x64x64; the experiment trains them at batch 64).
//
// Each measurement is the median of `repeats` timed runs after one warm-up run; hcnn and
// libtorch runs alternate so that a noisy neighbour hurts both alike. Unless --no-check is
// given, the libtorch figures are measured again in a separate process of this program (which
// runs libtorch alone, `--torch-only`), and a difference of more than 15 % is reported: sharing
// a process (two OpenMP runtimes, caches) must not handicap the peer.
//
// --memory measures instead the peak resident memory of a training step: for each network and
// batch, two fresh processes of this program (`--memory-of hcnn|libtorch NAME BATCH`) each build
// only their side's network and run two training steps; the peak (getrusage's ru_maxrss)
// includes what both sides share, the program and its libraries.
#include <hcnn/hcnn.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#ifdef HCNN_BENCH_LIBTORCH
#include <ATen/Config.h>
#include <torch/torch.h>
#endif

#include <omp.h>
#include <sys/resource.h>

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

// A Combination in libtorch: each kept base on its centre crop of the shared input, the
// features flattened and concatenated, then the combination layers.
template <class C>
struct TorchCombinationImpl : torch::nn::Module {
  std::vector<torch::nn::Sequential> bases;
  torch::nn::Sequential head;

  TorchCombinationImpl() {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (bases.push_back(register_module("base" + std::to_string(I), torch_net<typename C::template base<I>>())), ...);
    }(std::make_index_sequence<C::base_count>{});
    head = register_module("head", torch_net<typename C::head>());
  }

  torch::Tensor forward(torch::Tensor x) {
    std::vector<torch::Tensor> features;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (features.push_back(bases[I]->forward(centre_crop<typename C::template base<I>>(x)).flatten(1)), ...);
    }(std::make_index_sequence<C::base_count>{});
    return head->forward(torch::cat(features, 1));
  }

  template <class Base>
  static torch::Tensor centre_crop(const torch::Tensor& x) {
    constexpr Shape outer = C::input_shape, inner = Base::input_shape;
    return x.narrow(2, (outer.h - inner.h) / 2, inner.h).narrow(3, (outer.w - inner.w) / 2, inner.w);
  }
};

// The libtorch counterpart of a Net or a Combination.
template <class N>
auto torch_model_of() {
  if constexpr (is_combination<N>)
    return torch::nn::ModuleHolder<TorchCombinationImpl<N>>(std::make_shared<TorchCombinationImpl<N>>());
  else
    return torch_net<N>();
}
#endif

// What this machine can do at most: the FMA peak of all threads (GFLOP/s) with the vector width
// this program was compiled for, and the memory bandwidth of a parallel read (GB/s).
struct Ceilings {
  double gflops = 0;
  double read_gbs = 0;
};

// Eigen's packet (the vector type its GEMM kernels use) and its fused multiply-add.
using Packet = Eigen::internal::packet_traits<float>::type;
constexpr int packet_floats = Eigen::internal::packet_traits<float>::size;

Ceilings measure_ceilings() {
  namespace ei = Eigen::internal;
  Ceilings c;
  // Twelve independent FMA chains per thread cover the FMA latency on two FMA ports.
  constexpr int chains = 12;
  constexpr long iterations = 20'000'000;
  double best = 1e30;
  float sink = 0;
  for (int trial = 0; trial < 3; ++trial) {
    const double t = seconds([&] {
#pragma omp parallel reduction(+ : sink)
      {
        Packet acc[chains];
        const Packet a = ei::pset1<Packet>(0.999999f), b = ei::pset1<Packet>(1e-7f);
        for (int k = 0; k < chains; ++k) acc[k] = ei::pset1<Packet>(float(k + omp_get_thread_num()));
        for (long i = 0; i < iterations; ++i)
          for (int k = 0; k < chains; ++k) acc[k] = ei::pmadd(acc[k], a, b);
        for (int k = 0; k < chains; ++k) sink += ei::predux(acc[k]);
      }
    });
    best = std::min(best, t);
  }
  c.gflops = 2.0 * packet_floats * chains * double(iterations) * omp_get_max_threads() / best * 1e-9;
  // Read 1 GiB (far beyond every cache) in parallel, as a batch-1 fc layer reads its weights;
  // each thread sums its share with Eigen's vectorised reduction.
  std::vector<float> big(std::size_t{1} << 28, 1.0f);
  best = 1e30;
  for (int trial = 0; trial < 3; ++trial) {
    const double t = seconds([&] {
#pragma omp parallel reduction(+ : sink)
      {
        const std::size_t share = big.size() / std::size_t(omp_get_num_threads());
        const std::size_t first = share * std::size_t(omp_get_thread_num());
        sink += Eigen::Map<const Eigen::VectorXf>(big.data() + first, Eigen::Index(share)).sum();
      }
    });
    best = std::min(best, t);
  }
  c.read_gbs = double(big.size() * sizeof(float)) / best * 1e-9;
  if (sink == 42.0f) std::printf(" ");  // keeps the loops from being optimised away
  return c;
}

// libtorch figures of a network, img/s by (forward?, batch), as a --torch-only process printed them.
using TorchFigures = std::map<std::pair<bool, int>, double>;

// A training step's input: a batch of noise at the scale of mean-subtracted pixels, label 0.
template <class N>
Tensor<float> noise_batch(int batch) {
  Tensor<float> x(batch, N::input_shape);
  Rng rng(batch);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(rng.normal(0.0, 50.0));
  return x;
}

// One training step, the same for the timed runs and the memory runs: forward in training
// mode, backward of the mean cross-entropy, the SGD update.
template <class M, class Params>
void hcnn_train_step(M& model, SgdSolver<float>& solver, const Params& params, const Tensor<float>& x,
                     std::span<const int> labels) {
  model.forward(x, Mode::train);
  model.backward(labels);
  solver.step(params);
}
#ifdef HCNN_BENCH_LIBTORCH
template <class M>
void torch_train_step(M& model, torch::optim::SGD& solver, const torch::Tensor& x, const torch::Tensor& labels) {
  model->train();
  solver.zero_grad();
  torch::nll_loss(torch::log(model->forward(x)), labels).backward();
  solver.step();
}
#endif

template <class N>
void bench_network(const char* name, const std::vector<int>& batches, int repeats, bool per_layer, bool torch_only,
                   const Ceilings& ceilings, const TorchFigures* separate) {
  Model<N> model(1);
  SgdSolver<float> solver(Sgd{.lr = 1e-6f, .momentum = 0.9f, .weight_decay = 5e-4f});
  const auto params = model.parameters();
  const std::vector<int> labels(256, 0);
#ifdef HCNN_BENCH_LIBTORCH
  auto torch_model = torch_model_of<N>();
  torch::optim::SGD torch_solver(torch_model->parameters(),
                                 torch::optim::SGDOptions(1e-6).momentum(0.9).weight_decay(5e-4));
#endif
  for (int batch : batches) {
    Tensor<float> x = noise_batch<N>(batch);
    const std::span<const int> y(labels.data(), std::size_t(batch));
    // BatchNorm's test-mode statistics come from training passes (Caffe's start empty, and a
    // forward pass through them would compute infinities).
    model.forward(x, Mode::train);
    std::vector<std::function<void()>> forward, train;
    if (!torch_only) {
      forward.push_back([&] { model.forward(x, Mode::test); });
      train.push_back([&] { hcnn_train_step(model, solver, params, x, y); });
    }
#ifdef HCNN_BENCH_LIBTORCH
    auto tx = torch::from_blob(x.data(), {batch, N::input_shape.c, N::input_shape.h, N::input_shape.w}).clone();
    auto ty = torch::zeros({batch}, torch::kLong);
    forward.push_back([&] {
      torch::NoGradGuard guard;
      torch_model->eval();
      torch_model->forward(tx);
    });
    train.push_back([&] { torch_train_step(torch_model, torch_solver, tx, ty); });
#endif
    for (auto [label, runs] : {std::pair{"forward", &forward}, std::pair{"train step", &train}}) {
      if (runs->empty()) continue;
      const auto t = median_times(*runs, repeats);
      const bool is_forward = runs == &forward;
      if (torch_only) {
        std::printf("torch-only %s %d %d %.6g\n", name, int(is_forward), batch, batch / t[0]);
        continue;
      }
      std::printf("%-9s batch %3d %-10s hcnn %9.2f img/s", name, batch, label, batch / t[0]);
      if (t.size() > 1) std::printf("   libtorch %9.2f img/s   hcnn/libtorch %5.2f", batch / t[1], t[1] / t[0]);
      if (t.size() > 1 && separate != nullptr) {
        const auto found = separate->find({is_forward, batch});
        if (found != separate->end()) {
          const double difference = found->second / (batch / t[1]) - 1;
          std::printf("   separate libtorch %9.2f img/s (%+.0f %%%s)", found->second, 100 * difference,
                      std::abs(difference) > 0.15 ? ", MORE THAN 15 % OFF: the in-process figure is suspect" : "");
        }
      }
      std::printf("\n");
      std::fflush(stdout);
    }
    if (torch_only || !per_layer) continue;
    if constexpr (!is_combination<N>) {  // per layer: each weight layer on a real pass's activations
      model.forward(x, Mode::test);
      std::vector<float> out, ws, dout, din;
      const auto names = layer_names<N>();
      model.for_each_layer([&]<std::size_t I>(auto& layer) {
        using L = std::remove_cvref_t<decltype(layer)>;
        if constexpr (L::spec::weight_layer) {
          const float* in = I == 0 ? x.data() : model.template activation<I - 1>().data();
          out.resize(std::size_t(batch) * L::out_shape.size());
          ws.resize(workspace_elements<float>(layer, batch));
          const double flops = 2.0 * batch * L::spec::template macs<N::template shape_before<I>()>();
          const auto t = median_times({[&] { layer.forward(in, out.data(), batch, Mode::test, ws.data()); }}, repeats);
          // Backward: the parameter gradients and, but for the first layer, the input gradient
          // (each as many multiply-adds as the forward pass), from an output gradient of ones.
          dout.assign(out.size(), 1.0f);
          din.resize(std::size_t(batch) * N::template shape_before<I>().size());
          float* input_gradient = I == 0 ? nullptr : din.data();
          const auto tb = median_times(
              {[&] { layer.backward(in, out.data(), dout.data(), input_gradient, batch, ws.data()); }}, repeats);
          const double gflops = flops / t[0] * 1e-9;
          const double backward_gflops = (I == 0 ? 1 : 2) * flops / tb[0] * 1e-9;
          std::printf("  %-9s %-10s batch %3d  %8.2f GFLOP/s  %5.1f %% of peak   backward %8.2f GFLOP/s  %5.1f %%", name,
                      names[I].c_str(), batch, gflops, 100 * gflops / ceilings.gflops, backward_gflops,
                      100 * backward_gflops / ceilings.gflops);
          if (L::spec::kind != std::string_view("Conv") && batch == 1) {  // fc: the weights stream from memory
            double bytes = 0;
            for (auto& p : layer.params()) bytes += double(p.size()) * sizeof(float);
            const double gbs = bytes / t[0] * 1e-9;
            std::printf("  %7.2f GB/s of weights  %5.1f %% of the read bandwidth", gbs, 100 * gbs / ceilings.read_gbs);
          }
          std::printf("\n");
        }
      });
    }
  }
}

// In a --memory-of child: two training steps of one side only, then its peak resident memory.
template <class N>
void peak_memory_child(const std::string& side, int batch) {
  const Tensor<float> x = noise_batch<N>(batch);
  const std::vector<int> labels(std::size_t(batch), 0);
  if (side == "hcnn") {
    Model<N> model(1);
    SgdSolver<float> solver(Sgd{.lr = 1e-6f, .momentum = 0.9f, .weight_decay = 5e-4f});
    const auto params = model.parameters();
    for (int step = 0; step < 2; ++step) hcnn_train_step(model, solver, params, x, labels);
  } else {
#ifdef HCNN_BENCH_LIBTORCH
    auto torch_model = torch_model_of<N>();
    torch::optim::SGD solver(torch_model->parameters(), torch::optim::SGDOptions(1e-6).momentum(0.9).weight_decay(5e-4));
    auto tx = torch::from_blob(const_cast<float*>(x.data()), {batch, N::input_shape.c, N::input_shape.h, N::input_shape.w});
    auto ty = torch::zeros({batch}, torch::kLong);
    for (int step = 0; step < 2; ++step) torch_train_step(torch_model, solver, tx, ty);
#endif
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("peak-memory %ld\n", usage.ru_maxrss);  // KiB on Linux
}

// Peak resident memory (MiB) of a child process running `side`'s training step, or -1.
double child_peak_memory(const std::string& side, const char* name, int batch) {
  const std::string command = std::filesystem::read_symlink("/proc/self/exe").string() + " --memory-of " + side +
                              " '" + name + "' " + std::to_string(batch);
  std::unique_ptr<FILE, int (*)(FILE*)> child(popen(command.c_str(), "r"), pclose);
  if (!child) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, child.get())) std::sscanf(line, "peak-memory %ld", &kib);
  return kib < 0 ? -1 : double(kib) / 1024;
}

void report_peak_memory(const char* name, const std::vector<int>& batches) {
  for (int batch : batches) {
    const double ours = child_peak_memory("hcnn", name, batch);
    std::printf("%-9s batch %3d training step peak resident memory: hcnn %8.0f MiB", name, batch, ours);
#ifdef HCNN_BENCH_LIBTORCH
    const double theirs = child_peak_memory("libtorch", name, batch);
    std::printf("   libtorch %8.0f MiB   hcnn/libtorch %5.2f", theirs, ours / theirs);
#endif
    std::printf("\n");
    std::fflush(stdout);
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

// Runs this program again with --torch-only and collects its libtorch figures per network.
std::map<std::string, TorchFigures> separate_torch_process(const std::string& arguments) {
  std::map<std::string, TorchFigures> figures;
  const std::string command = std::filesystem::read_symlink("/proc/self/exe").string() + " --torch-only " + arguments;
  std::unique_ptr<FILE, int (*)(FILE*)> child(popen(command.c_str(), "r"), pclose);
  if (!child) return figures;
  char line[512], name[64];
  int forward = 0, batch = 0;
  double rate = 0;
  while (std::fgets(line, sizeof line, child.get()))
    if (std::sscanf(line, "torch-only %63s %d %d %lf", name, &forward, &batch, &rate) == 4)
      figures[name][{forward != 0, batch}] = rate;
  return figures;
}

}  // namespace

int main(int argc, char** argv) {
  std::string net = "all", batch_text = "1,32", memory_side, memory_name;
  int repeats = 3, memory_batch = 0;
  bool per_layer = false, torch_only = false, check = true, memory = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--net" && i + 1 < argc) net = argv[++i];
    else if (arg == "--batch" && i + 1 < argc) batch_text = argv[++i];
    else if (arg == "--repeats" && i + 1 < argc) repeats = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--layers") per_layer = true;
    else if (arg == "--torch-only") torch_only = true;
    else if (arg == "--no-check") check = false;
    else if (arg == "--memory") memory = true;
    else if (arg == "--memory-of" && i + 3 < argc) {
      memory_side = argv[++i];
      memory_name = argv[++i];
      memory_batch = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--net caffenet|vgg19|small|all] [--batch 1,32] [--repeats 3] [--layers] [--no-check] "
                   "[--memory]\n",
                   argv[0]);
      return arg == "--help" ? 0 : 2;
    }
  }
  const std::vector<int> batches = parse_list(batch_text.c_str());
  if (!memory_side.empty()) net = "all";  // a --memory-of child picks its network by name
#ifdef HCNN_BENCH_LIBTORCH
  torch::set_num_threads(omp_get_max_threads());
#else
  if (torch_only) return 0;
  check = false;
#endif
  Ceilings ceilings;
  std::map<std::string, TorchFigures> separate;
  if (!torch_only && memory_side.empty()) {
    std::printf("CPU: %s; compiled for %s (the CPU offers %s)\n", hcnn::cpu::cpu_model_name().c_str(),
                hcnn::cpu::compiled_simd(), hcnn::cpu::cpu_simd());
    std::printf("threads: %d (OpenMP)", omp_get_max_threads());
#ifdef HCNN_BENCH_LIBTORCH
    std::printf(", libtorch %s with %d threads, oneDNN (mkldnn) %s", TORCH_VERSION, torch::get_num_threads(),
                AT_MKLDNN_ENABLED() ? (at::globalContext().userEnabledMkldnn() ? "built in and on" : "built in, off")
                                    : "not built in");
#else
    std::printf(", built without libtorch: no ratio");
#endif
    std::printf("\n");
    if (!memory) {
      ceilings = measure_ceilings();
      std::printf("measured ceilings: %.1f GFLOP/s FMA peak (%d-bit vectors, all threads), %.1f GB/s parallel read\n",
                  ceilings.gflops, packet_floats * 32, ceilings.read_gbs);
    }
    if (check && !memory) {
      std::printf("measuring libtorch again in a separate process ...\n");
      std::fflush(stdout);
      separate = separate_torch_process("--net " + net + " --batch " + batch_text + " --repeats " + std::to_string(repeats));
    }
  }
  auto run = [&]<class N>(const char* name) {
    if (!memory_side.empty()) {
      if (memory_name == name) peak_memory_child<N>(memory_side, memory_batch);
      return;
    }
    if (memory) return report_peak_memory(name, batches);
    const auto found = separate.find(name);
    bench_network<N>(name, batches, repeats, per_layer, torch_only, ceilings,
                     found == separate.end() ? nullptr : &found->second);
  };
  if (net == "caffenet" || net == "all") run.template operator()<zoo::CaffeNet<1000>>("CaffeNet");
  if (net == "vgg19" || net == "all") run.template operator()<zoo::VGG19<1000>>("VGG-19");
  if (net == "small" || net == "all") {
    run.template operator()<zoo::SmallD<51>>("SmallD");
    run.template operator()<zoo::SmallVD<51>>("SmallVD");
    run.template operator()<zoo::SmallVDBN<51>>("SmallVDBN");
    // The experiment's target-task [D,VD]+2CL, trained as a whole network here.
    run.template operator()<Combination<zoo::SmallD<51>, zoo::SmallVDBN<51>, FC<512>, Softmax<50>>>("[D,VD]+2CL");
  }
}
