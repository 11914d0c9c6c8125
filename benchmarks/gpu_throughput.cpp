// Images per second of whole networks on the GPU (Cuda backend), inference and training step
// (forward + backward + SGD update; ordinary, and replayed from a CUDA graph by
// cuda::TrainingGraph, with the speed-up), and each layer's forward and backward times; the peer is
// PyTorch with cuDNN, run by benchmarks/gpu_peer.py in the same scripts/gpu-check.sh run.
//
//   hcnn_bench_gpu --net caffenet,vgg19,combination --batch 1,32,128 [--repeats 10] [--layers]
//   hcnn_bench_gpu ... --tf32        (TF32 tensor-core math for convolutions and GEMMs)
//   hcnn_bench_gpu ... --bf16        (BF16 storage, FP32 accumulation and master weights)
//
// Each figure is the median of `repeats` timed runs after two warm-up runs (the first finds
// cuDNN's algorithms), timed by the host after synchronising the stream. The FLOP ceiling
// counts 2 FLOP per multiply-add of the forward pass and three times that for a training step,
// at the GPU's peak: --peak-tflops, by default the H100/H200 SXM's dense peak of the precision
// (67 TFLOP/s FP32, 495 TF32, 989 BF16).
#include <hcnn/backend/cuda.hpp>
#include <hcnn/hcnn.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace hcnn;
using Clock = std::chrono::steady_clock;

// The paper's [D,VD]+2CL at ImageNet scale: CaffeNet and VGG-19 without their top two weight
// layers, concatenated into fc 4096 and a 1000-way softmax.
using Joint = Combination<zoo::CaffeNet<>, zoo::VGG19<>, FC<4096>, Softmax<1000>>;

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> values;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) values.push_back(std::atoi(item.c_str()));
  return values;
}

template <class F>
double median_seconds(int repeats, F&& run) {
  for (int i = 0; i < 2; ++i) run();
  cuda::context().synchronize();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = Clock::now();
    run();
    cuda::context().synchronize();
    times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

std::vector<std::string> parse_names(const std::string& text) {
  std::vector<std::string> names;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) names.push_back(item);
  return names;
}

// Multiply-adds of one sample's forward pass: a network's, or a Combination's bases as kept
// plus its CLs.
template <class N>
consteval std::int64_t forward_macs() {
  if constexpr (is_combination<N>) {
    return mac_count<typename N::head>() + []<std::size_t... I>(std::index_sequence<I...>) {
      return (std::int64_t{0} + ... + mac_count<typename N::template base<I>>());
    }(std::make_index_sequence<N::base_count>{});
  } else {
    return mac_count<N>();
  }
}

// Each layer's forward and backward (input and parameter gradients) times at batch n, on the
// model's own activations of the last pass; GFLOP/s count 2 FLOP per multiply-add forward and
// twice that backward.
template <class M>
void print_layers(M& model, int n, int repeats) {
  using T = typename M::value_type;
  std::printf("  layer       forward ms   GFLOP/s  backward ms   GFLOP/s\n");
  Buffer<T, Cuda> out, ws, dout, din;
  model.for_each_layer([&]<std::size_t I>(auto& layer) {
    using L = std::remove_cvref_t<decltype(layer)>;
    constexpr Shape in_shape = M::net::template shape_before<I>();
    const T* in = I == 0 ? model.input().data() : model.template activation<I - 1>().data();
    out.ensure(std::size_t(n) * L::out_shape.size());
    ws.ensure(workspace_elements<T>(layer, n));
    const double forward = median_seconds(repeats, [&] { layer.forward(in, out.data(), n, Mode::test, ws.data()); });
    dout.assign(std::size_t(n) * L::out_shape.size(), T(1e-3f));
    din.ensure(std::size_t(n) * in_shape.size());
    const double backward = median_seconds(repeats, [&] {
      layer.backward(in, out.data(), dout.data(), din.data(), n, ws.data());
    });
    constexpr std::int64_t macs = L::spec::template macs<in_shape>();
    std::printf("  %-10s %10.3f %9.0f %12.3f %9.0f\n", model.names()[I].c_str(), forward * 1e3,
                2.0 * macs * n / forward / 1e9, backward * 1e3, 4.0 * macs * n / backward / 1e9);
  });
}

template <class M>
void run(const char* name, const std::vector<int>& batches, int repeats, bool layers, double peak_tflops) {
  using T = typename M::value_type;
  M model(1);
  SgdSolver<T, Cuda> solver(Sgd{.lr = 1e-4f});
  constexpr std::int64_t macs = forward_macs<typename M::net>();
  // The physical ceiling: the GPU's peak arithmetic and nothing else.
  std::printf("%-12s %.1f GFLOP per image forward, %.1f per training step: at %.0f TFLOP/s at most %.0f img/s "
              "inference, %.0f training\n",
              name, 2.0 * macs / 1e9, 6.0 * macs / 1e9, peak_tflops, peak_tflops * 1e12 / (2.0 * macs),
              peak_tflops * 1e12 / (6.0 * macs));
  for (int n : batches) {
    Tensor<T, Cuda> x(n, M::input_shape);
    std::vector<T> host(x.size());
    Rng rng(n);
    for (auto& v : host) v = T(float(rng.normal()));
    x.buffer().copy_from_host(host.data(), host.size());
    std::vector<int> labels(static_cast<std::size_t>(n));
    for (int s = 0; s < n; ++s) labels[std::size_t(s)] = s % M::output_shape.c;

    const double inference = median_seconds(repeats, [&] { model.forward(x, Mode::test); });
    const auto params = model.parameters();
    const double training = median_seconds(repeats, [&] {
      model.forward(x, Mode::train);
      model.backward(labels);
      solver.step(params);
    });
    std::printf("%-12s batch %4d  inference %9.1f img/s (%6.0f GFLOP/s)  training %9.1f img/s (%6.0f GFLOP/s)", name,
                n, n / inference, 2.0 * macs * n / inference / 1e9, n / training, 6.0 * macs * n / training / 1e9);
    // The same step replayed from a CUDA graph (the warm-up runs it once and captures it).
    cuda::TrainingGraph graph(model, solver);
    const double graphed = median_seconds(repeats, [&] { graph.run(x, labels); });
    std::printf("  graph %9.1f img/s (%.2fx)%s\n", n / graphed, training / graphed,
                graph.capture_error().empty() ? "" : " (not captured: ordinary steps)");
    if constexpr (requires { model.for_each_layer([]<std::size_t>(auto&) {}); })
      if (layers) {
        model.forward(x, Mode::test);
        print_layers(model, n, repeats);
      }
  }
}

}  // namespace

template <class T>
void run_all(const std::string& nets, const std::vector<int>& batches, int repeats, bool layers, double peak) {
  for (const auto& net : parse_names(nets)) {
    if (net == "caffenet") run<Model<zoo::CaffeNet<>, Cuda, T>>("CaffeNet", batches, repeats, layers, peak);
    else if (net == "vgg19") run<Model<zoo::VGG19<>, Cuda, T>>("VGG-19", batches, repeats, layers, peak);
    else if (net == "combination") run<Model<Joint, Cuda, T>>("[D,VD]+2CL", batches, repeats, layers, peak);
    else throw Error("unknown network '" + net + "' (caffenet, vgg19, combination)");
  }
}

int main(int argc, char** argv) {
  std::string nets = "caffenet,vgg19,combination", batch_text = "1,32,128";
  int repeats = 10;
  bool layers = false, tf32 = false, bf16 = false;
  double peak_tflops = 0;  // 0: the H100/H200 SXM's dense peak of the precision (NVIDIA's datasheet)
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--net" && i + 1 < argc) nets = argv[++i];
    else if (arg == "--batch" && i + 1 < argc) batch_text = argv[++i];
    else if (arg == "--repeats" && i + 1 < argc) repeats = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--layers") layers = true;
    else if (arg == "--tf32") tf32 = true;
    else if (arg == "--bf16") bf16 = true;
    else if (arg == "--peak-tflops" && i + 1 < argc) peak_tflops = std::atof(argv[++i]);
    else {
      std::fprintf(stderr,
                   "usage: %s [--net caffenet,vgg19,combination] [--batch 1,32,128] [--repeats N] [--layers] "
                   "[--tf32 | --bf16] [--peak-tflops P]\n",
                   argv[0]);
      return 2;
    }
  }
  try {
    cuda::require_device();
    cuda::context().set_tf32(tf32);
    std::printf("GPU: %s; cuDNN %zu, %s\n", cuda::device_name(0).c_str(), cudnnGetVersion(),
                bf16 ? "BF16 storage, FP32 accumulation" : tf32 ? "TF32 math" : "FP32 math");
    if (peak_tflops <= 0) peak_tflops = bf16 ? 989 : tf32 ? 495 : 67;
    const std::vector<int> batches = parse_list(batch_text);
    if (bf16) run_all<cuda::bf16>(nets, batches, repeats, layers, peak_tflops);
    else run_all<float>(nets, batches, repeats, layers, peak_tflops);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hcnn_bench_gpu: %s\n", e.what());
    return 1;
  }
}
