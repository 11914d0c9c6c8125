// hcnn_bench_feature_cache — what caching frozen base features buys: the per-epoch time of
// training [SmallD, SmallVDBN]+2CL's combination layers from the cache against recomputing the
// two frozen bases every step, in the same run, on the same (in-memory) images.
//
//   hcnn_bench_feature_cache [--images 1024] [--views 10] [--epochs 3]
//
// Prints the CPU, the SIMD width it was compiled for, both per-epoch times, the one-off cost of
// filling the cache, and the speed-up.
#include <hcnn/hcnn.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

using namespace hcnn;

namespace {

// Random 3x64x64 "images" held in memory, so the benchmark measures the networks, not JPEG
// decoding; augmentation mirrors them.
class RandomImages {
 public:
  explicit RandomImages(std::size_t n) : n_(n) {}
  [[nodiscard]] std::size_t size() const { return n_; }
  [[nodiscard]] Shape shape() const { return {3, 64, 64}; }
  [[nodiscard]] int label(std::size_t i) const { return int(i % 50); }
  void load(std::size_t i, float* out, Rng* augment) const {
    Rng rng(11, i);
    const bool mirror = augment != nullptr && augment->uniform() < 0.5;
    for (int c = 0; c < 3; ++c)
      for (int h = 0; h < 64; ++h)
        for (int w = 0; w < 64; ++w) out[(c * 64 + h) * 64 + (mirror ? 63 - w : w)] = float(rng.normal());
  }

 private:
  std::size_t n_;
};

using Joint = Combination<zoo::SmallD<51>, zoo::SmallVDBN<51>, FC<512>, Softmax<50>>;

double seconds_per_epoch(bool cache, const RandomImages& data, int views, int epochs, double* fill_seconds) {
  Model<Joint> model(1);
  Trainer trainer(model, Sgd{.lr = 0.01f}, strategy::combination_layers,
                  {.batch_size = 64, .views = views, .cache_features = cache, .progress = ProgressStyle::none});
  const auto start = std::chrono::steady_clock::now();
  const auto reports = trainer.fit(data, epochs);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double training = 0;
  for (const auto& r : reports) training += r.seconds;
  if (fill_seconds != nullptr) *fill_seconds = total - training;
  return training / epochs;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t images = 1024;
  int views = 10, epochs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--images") images = std::stoul(argv[i + 1]);
    else if (arg == "--views") views = std::stoi(argv[i + 1]);
    else if (arg == "--epochs") epochs = std::stoi(argv[i + 1]);
  }
  const RandomImages data(images);
  std::printf("CPU: %s, %u hardware threads; compiled for %s (CPU offers %s)\n", cpu::cpu_model_name().c_str(),
              std::thread::hardware_concurrency(), cpu::compiled_simd(), cpu::cpu_simd());
  std::printf("[SmallD, SmallVDBN]+2CL, strategy softmax + fc-alpha, %zu images, batch 64, %d views, %d epochs\n",
              images, views, epochs);
  double fill = 0;
  const double cached = seconds_per_epoch(true, data, views, epochs, &fill);
  const double recomputed = seconds_per_epoch(false, data, views, epochs, nullptr);
  std::printf("recompute the frozen bases: %8.3f s per epoch\n", recomputed);
  std::printf("from the feature cache:     %8.3f s per epoch (+ %.2f s once to fill it: %d views x %zu images)\n",
              cached, fill, views, images);
  std::printf("speed-up per epoch: %.1fx; the cache pays for itself after %.1f epochs\n", recomputed / cached,
              fill / std::max(recomputed - cached, 1e-9));
}
