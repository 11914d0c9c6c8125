// hcnn_caltech101 — the paper's experiments on Caltech-101, scaled to a 2-core CPU.
//
//   hcnn_caltech101 [--full | --tiny] [--data DIR] [--out DIR] [--seeds N] [--base-epochs E]
//                   [--head-epochs E] [--finetune-epochs E] [--views V] [--deep-seeds N]
//                   [--split-seed S] [--base-seed S] [--max-images-per-class N] [--split-only]
//
// The classes are split by a seeded permutation into 51 "source" classes (standing in for
// ImageNet) and 50 "target" classes (the transfer task, as the paper's transfers to Caltech and
// MIT67). The three steps of the paper:
//   (a) pre-train D, D' (another seed) and VD (with BatchNorm) on the source task;
//   (b) train [D,D']+2CL and [D,VD]+2CL, and Table 1's variants, on the source task from the
//       frozen bases' cached features;
//   (c) transfer to the target task: each single network with its two top layers fine-tuned
//       (Fig. 5b), the joints with a new softmax (softmax + fc-alpha trained), the averages of
//       the transferred singles, and Table 4's fine-tuning depths.
// Then the analysis: Fig. 3 (the gradient of each class's log-posterior at the concatenation)
// and Fig. 4 (the fc features for a t-SNE plot). Everything is written to --out
// (default caltech101-results): tables.md, results.csv, split.csv, logs/*.csv, fig3_*.csv,
// fig4_*.csv and checkpoints; scripts/plot_caltech101.py draws the pictures from them.
//
// The default is the demo (about 15 minutes on 2 cores); --full is the setting of docs/caltech101.md;
// --tiny is the CI's (a few classes and images, one epoch).
#include <hcnn/hcnn.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <omp.h>
#include <sstream>
#include <string>
#include <vector>

#include "models.hpp"

namespace fs = std::filesystem;
using namespace hcnn;
using namespace caltech101;

namespace {

struct Settings {
  std::string name = "demo";
  fs::path data = "../shared/data/caltech101/images";
  fs::path out = "caltech101-results";
  int source_classes = caltech101::source_classes;
  int target_classes = caltech101::target_classes;
  int max_images_per_class = 0;  // 0: all
  int train_per_class = 30;      // target training images (and source "train" images) per class
  int test_min = 10, test_max = 30;
  int pretrain_cap = 100;  // source pre-training images per class (train + extra)
  int base_epochs = 8;
  int head_epochs = 20;
  int finetune_epochs = 1;
  int views = 3;
  int seeds = 2;
  int deep_seeds = 1;  // seeds of Table 4's rows that fine-tune into the bases (no cache: slow)
  std::uint64_t split_seed = 1;
  std::uint64_t base_seed = 1;
  bool split_only = false;  // write split.csv and stop

  static Settings full() {
    Settings s;
    s.name = "full";
    s.base_epochs = 25;
    s.head_epochs = 30;
    s.finetune_epochs = 3;
    s.views = 10;
    s.deep_seeds = 3;
    return s;
  }
  static Settings tiny() {
    Settings s;
    s.name = "tiny";
    s.source_classes = 4;
    s.target_classes = 4;
    s.max_images_per_class = 12;
    s.train_per_class = 8;
    s.test_min = 4;
    s.test_max = 4;
    s.pretrain_cap = 8;
    s.base_epochs = 1;
    s.head_epochs = 1;
    s.finetune_epochs = 1;
    s.views = 2;
    s.seeds = 2;
    s.deep_seeds = 1;
    return s;
  }
};

constexpr const char* usage =
    "usage: hcnn_caltech101 [--full | --tiny] [--data DIR] [--out DIR] [--seeds N] [--base-epochs E]\n"
    "                       [--head-epochs E] [--finetune-epochs E] [--views V] [--deep-seeds N]\n"
    "                       [--split-seed S] [--base-seed S] [--max-images-per-class N] [--split-only]\n";

Settings parse(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i)  // the preset first, so that other flags override it
    if (std::string(argv[i]) == "--full") s = Settings::full();
    else if (std::string(argv[i]) == "--tiny") s = Settings::tiny();
  const std::map<std::string, int*> ints{{"--seeds", &s.seeds},
                                         {"--base-epochs", &s.base_epochs},
                                         {"--head-epochs", &s.head_epochs},
                                         {"--finetune-epochs", &s.finetune_epochs},
                                         {"--views", &s.views},
                                         {"--deep-seeds", &s.deep_seeds},
                                         {"--max-images-per-class", &s.max_images_per_class}};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--full" || arg == "--tiny") continue;
    if (arg == "--split-only") {
      s.split_only = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      std::exit(0);
    }
    if (i + 1 >= argc) throw Error("hcnn_caltech101: " + arg + " needs a value (or is unknown)\n" + usage);
    const std::string value = argv[++i];
    if (arg == "--data") s.data = value;
    else if (arg == "--out") s.out = value;
    else if (arg == "--split-seed") s.split_seed = std::stoull(value);
    else if (arg == "--base-seed") s.base_seed = std::stoull(value);
    else if (const auto at = ints.find(arg); at != ints.end()) {
      std::size_t used = 0;
      const int v = std::stoi(value, &used);
      if (used != value.size() || v < 0) throw Error("hcnn_caltech101: " + arg + " expects a count, got '" + value + "'");
      *at->second = v;
    } else {
      throw Error("hcnn_caltech101: unknown option " + arg + "\n" + usage);
    }
  }
  if (s.seeds < 1 || s.views < 1 || s.base_epochs < 1 || s.head_epochs < 1)
    throw Error("hcnn_caltech101: --seeds, --views, --base-epochs and --head-epochs must be at least 1");
  return s;
}

// ---------------------------------------------------------------------------------------
// The split: classes by a seeded permutation, images per class by a seeded shuffle.

struct Split {
  std::vector<std::string> source_names, target_names;
  std::vector<LabeledImage> source_pretrain, source_test, target_train, target_test;
};

Split make_split(const ImageFolder& folder, const Settings& s) {
  const int classes = static_cast<int>(folder.classes().size());
  if (s.source_classes + s.target_classes > classes)
    throw Error("hcnn_caltech101: " + folder.root().string() + " has " + std::to_string(classes) + " classes, " +
                std::to_string(s.source_classes + s.target_classes) + " are needed");
  std::vector<std::vector<std::size_t>> members(static_cast<std::size_t>(classes));
  for (std::size_t i = 0; i < folder.size(); ++i) members[std::size_t(folder.label(i))].push_back(i);
  std::vector<int> order(static_cast<std::size_t>(classes));
  std::iota(order.begin(), order.end(), 0);
  Rng class_rng(s.split_seed, 0);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[class_rng.below(i)]);

  Split split;
  for (int rank = 0; rank < s.source_classes + s.target_classes; ++rank) {
    const int c = order[std::size_t(rank)];
    auto images = members[std::size_t(c)];
    Rng rng(s.split_seed, std::uint64_t(c) + 1);
    for (std::size_t i = images.size(); i > 1; --i) std::swap(images[i - 1], images[rng.below(i)]);
    if (s.max_images_per_class > 0 && images.size() > std::size_t(s.max_images_per_class))
      images.resize(std::size_t(s.max_images_per_class));
    const int n = static_cast<int>(images.size());
    // Test: min(test_max, max(test_min, n - train)) images, never all of them; then up to
    // `train_per_class` training images; the rest are "extra" (source pre-training only).
    const int test = std::min(std::min(s.test_max, std::max(s.test_min, n - s.train_per_class)), n - 1);
    const int train = std::min(s.train_per_class, n - test);
    const bool source = rank < s.source_classes;
    const int label = source ? rank : rank - s.source_classes;
    (source ? split.source_names : split.target_names).push_back(folder.classes()[std::size_t(c)]);
    auto add = [&](std::vector<LabeledImage>& to, int from, int to_end) {
      for (int i = from; i < to_end; ++i) to.push_back({folder.path(images[std::size_t(i)]), label});
    };
    if (source) {
      add(split.source_test, 0, test);
      add(split.source_pretrain, test, std::min(n, test + s.pretrain_cap));
    } else {
      add(split.target_test, 0, test);
      add(split.target_train, test, test + train);
    }
  }
  return split;
}

void write_split(const fs::path& file, const Split& split) {
  std::ofstream out(file);
  out << "path,task,role,label,class\n";
  auto rows = [&](const std::vector<LabeledImage>& images, const char* task, const char* role,
                  const std::vector<std::string>& names) {
    for (const auto& image : images)
      out << image.path.string() << "," << task << "," << role << "," << image.label << ","
          << names[std::size_t(image.label)] << "\n";
  };
  rows(split.source_pretrain, "source", "pretrain", split.source_names);
  rows(split.source_test, "source", "test", split.source_names);
  rows(split.target_train, "target", "train", split.target_names);
  rows(split.target_test, "target", "test", split.target_names);
  if (!out) throw IoError(file, "cannot write the split");
}

// One in-memory set per task: training images first, then test images.
struct Task {
  PreloadedImages images;
  std::size_t train_count;
  [[nodiscard]] Subset<PreloadedImages> train() const { return {images, range(0, train_count)}; }
  [[nodiscard]] Subset<PreloadedImages> test() const { return {images, range(train_count, images.size())}; }
  static std::vector<std::size_t> range(std::size_t from, std::size_t to) {
    std::vector<std::size_t> r(to - from);
    std::iota(r.begin(), r.end(), from);
    return r;
  }
};

Task preload(const std::vector<LabeledImage>& train, const std::vector<LabeledImage>& test, const Preprocess& p) {
  std::vector<LabeledImage> all = train;
  all.insert(all.end(), test.begin(), test.end());
  return Task{PreloadedImages(std::move(all), stored_size, p), train.size()};
}

// The source training images' channel means (in BGR order) and the scale 1/std.
std::pair<std::array<float, 3>, float> channel_statistics(const PreloadedImages& images, std::size_t count) {
  std::array<double, 3> sum{}, squares{};
  double values = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const ImageView image = images.stored(i);
    const std::size_t pixels = std::size_t(image.width) * std::size_t(image.height);
    for (std::size_t p = 0; p < 3 * pixels; p += 3)
      for (int c = 0; c < 3; ++c) {
        const double v = image.rgb[p + std::size_t(2 - c)];  // BGR
        sum[std::size_t(c)] += v;
        squares[std::size_t(c)] += v * v;
      }
    values += double(pixels);
  }
  std::array<float, 3> mean{};
  double variance = 0;
  for (std::size_t c = 0; c < 3; ++c) {
    mean[c] = float(sum[c] / values);
    variance += squares[c] / values - double(mean[c]) * double(mean[c]);
  }
  return {mean, float(1.0 / std::sqrt(std::max(variance / 3.0, 1e-6)))};
}

// ---------------------------------------------------------------------------------------
// Results.

struct Result {
  std::string table, row, task;
  int seed = 0;
  Accuracy accuracy;
};

class Results {
 public:
  void add(std::string table, std::string row, std::string task, int seed, const Accuracy& a) {
    std::printf("  %-8s %-34s %-6s seed %d: top-1 %6.2f %%  top-5 %6.2f %%\n", table.c_str(), row.c_str(), task.c_str(),
                seed, 100 * a.top1, 100 * a.top5);
    std::fflush(stdout);
    all_.push_back({std::move(table), std::move(row), std::move(task), seed, a});
  }

  struct Summary {
    double mean = 0, sd = 0, top5 = 0;
    int n = 0;
  };
  [[nodiscard]] Summary summary(const std::string& table, const std::string& row, const std::string& task) const {
    Summary s;
    std::vector<double> top1;
    for (const auto& r : all_)
      if (r.table == table && r.row == row && r.task == task) {
        top1.push_back(100 * r.accuracy.top1);
        s.top5 += 100 * r.accuracy.top5;
      }
    s.n = static_cast<int>(top1.size());
    if (s.n == 0) return s;
    s.mean = std::accumulate(top1.begin(), top1.end(), 0.0) / s.n;
    s.top5 /= s.n;
    for (double v : top1) s.sd += (v - s.mean) * (v - s.mean);
    s.sd = s.n > 1 ? std::sqrt(s.sd / (s.n - 1)) : 0.0;
    return s;
  }

  void write_csv(const fs::path& file) const {
    std::ofstream out(file);
    out << "table,row,task,seed,top1,top5,loss,images\n";
    for (const auto& r : all_)
      out << r.table << ",\"" << r.row << "\"," << r.task << "," << r.seed << "," << r.accuracy.top1 << ","
          << r.accuracy.top5 << "," << r.accuracy.loss << "," << r.accuracy.count << "\n";
    if (!out) throw IoError(file, "cannot write the results");
  }

 private:
  std::vector<Result> all_;
};

std::string cell(const Results::Summary& s) {
  if (s.n == 0) return "-";
  char text[64];
  if (s.n > 1) std::snprintf(text, sizeof text, "%.2f ± %.2f", s.mean, s.sd);
  else std::snprintf(text, sizeof text, "%.2f", s.mean);
  return text;
}
std::string gain(const Results::Summary& s, double best) {
  if (s.n == 0) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%+.2f", s.mean - best);
  return text;
}

// ---------------------------------------------------------------------------------------
// Training.

class Experiment {
 public:
  explicit Experiment(Settings s) : s_(std::move(s)) {}

  void run() {
    const auto start = std::chrono::steady_clock::now();
    fs::create_directories(s_.out / "logs");
    for (const auto& entry : fs::directory_iterator(s_.out / "logs")) fs::remove(entry.path());  // logs append
    describe();

    const ImageFolder folder(s_.data, Preprocess{});
    const Split split = make_split(folder, s_);
    write_split(s_.out / "split.csv", split);
    std::printf("split (seed %llu): source %d classes, %zu pre-training + %zu test images; target %d classes, %zu "
                "training + %zu test images (split.csv)\n",
                static_cast<unsigned long long>(s_.split_seed), s_.source_classes, split.source_pretrain.size(),
                split.source_test.size(), s_.target_classes, split.target_train.size(), split.target_test.size());
    if (s_.split_only) return;
    Task source = preload(split.source_pretrain, split.source_test, preprocessing({}, 1));
    const auto [mean, scale] = channel_statistics(source.images, source.train_count);
    source.images.preprocessing() = preprocessing(mean, scale);
    Task target = preload(split.target_train, split.target_test, preprocessing(mean, scale));
    std::printf("decoded %zu images into memory at %dx%d (%.1f s)\n", source.images.size() + target.images.size(),
                stored_size, stored_size, seconds_since(start));
    metadata_["preprocess"] = to_string(target.images.preprocessing());
    metadata_["classes"] = class_names(split.target_names, caltech101::target_classes);
    source_metadata_ = {{"preprocess", metadata_["preprocess"]},
                        {"classes", class_names(split.source_names, caltech101::source_classes)}};

    const auto source_train = source.train(), source_test = source.test();
    const auto target_train = target.train(), target_test = target.test();

    std::printf("\n(a) pre-training the bases on the source task, %d epochs each\n", s_.base_epochs);
    Model<D> d(s_.base_seed), d2(s_.base_seed + 100);
    Model<VD> vd(s_.base_seed + 200);
    pretrain(d, "D", source_train, source_test);
    pretrain(d2, "D'", source_train, source_test);
    pretrain(vd, "VD", source_train, source_test);
    average_on_source<D, D>("[D,D']+avg", d, d2, source_test);
    average_on_source<D, VD>("[D,VD]+avg", d, vd, source_test);

    std::printf("\n(b) training the combination networks on the source task (frozen bases, %d views, %d epochs, %d seeds)\n",
                s_.views, s_.head_epochs, s_.seeds);
    for (int seed = 1; seed <= s_.seeds; ++seed) {
      const auto stage = std::chrono::steady_clock::now();
      auto hom = std::make_unique<Model<SourceJoint<D, D>>>(seed);
      auto het = std::make_unique<Model<SourceJoint<D, VD>>>(seed);
      train_source("table2", "[D,D']+2CL", *hom, d, d2, seed, source_train, source_test);
      const Accuracy het_source = train_source("table2", "[D,VD]+2CL", *het, d, vd, seed, source_train, source_test);
      results_.add("table1", "2CL fc-alpha 512", "source", seed, het_source);
      train_variant<SourceJoint<D, VD, 640>>("2CL fc-alpha 640", d, vd, seed, source_train, source_test);
      train_variant<SourceJoint<D, VD, 768>>("2CL fc-alpha 768", d, vd, seed, source_train, source_test);
      train_variant<SourceJoint5c>("3CL 512-768 (Fig. 5c)", d, vd, seed, source_train, source_test);
      train_variant<SourceJoint5d>("3CL 512-768 (Fig. 5d)", d, vd, seed, source_train, source_test);

      std::printf("  (step (b), seed %d: %.0f s)\n\n(c) transfer to the target task, seed %d\n", seed,
                  seconds_since(stage), seed);
      const auto transfer_start = std::chrono::steady_clock::now();
      transfer(seed, d, d2, vd, *hom, *het, target_train, target_test);
      std::printf("  (step (c), seed %d: %.0f s)\n\n", seed, seconds_since(transfer_start));
    }
    std::printf("feature bank: %zu entries, %.0f MB\n", bank_.entries(), double(bank_.bytes()) / 1e6);
    results_.write_csv(s_.out / "results.csv");
    const std::string tables = render_tables();
    std::cout << "\n" << tables;
    std::ofstream(s_.out / "tables.md") << tables;
    std::printf("\nwall time %.0f s; results, logs and analysis files in %s\n", seconds_since(start), s_.out.c_str());
    std::printf("pictures: python3 scripts/plot_caltech101.py %s\n", s_.out.c_str());
  }

 private:
  void describe() const {
    std::printf("hcnn_caltech101 (%s setting): %d source / %d target classes, bases %d epochs, heads %d epochs with %d "
                "views, %d seeds (%d for fine-tuning into the bases, %d epochs)%s\n",
                s_.name.c_str(), s_.source_classes, s_.target_classes, s_.base_epochs, s_.head_epochs, s_.views, s_.seeds,
                s_.deep_seeds, s_.finetune_epochs,
                s_.name == "demo" ? ".\n  The demo trains fewer epochs, views and seeds than --full (25 base epochs, 10 views, 30 "
                                    "head epochs, 3 seeds everywhere), which docs/caltech101.md reports."
                                  : "");
    std::printf("CPU: %s, %d threads\n", cpu::cpu_model_name().c_str(), omp_get_max_threads());
  }

  TrainOptions options(const std::string& log, int epochs, std::size_t train_size, std::uint64_t seed, bool warmup,
                       ProgressStyle progress = ProgressStyle::none) {
    const auto batches = std::int64_t((train_size + 63) / 64);
    return {.batch_size = 64,
            .schedule = Schedule::warmup_cosine(warmup && epochs > 1 ? batches : 0, batches * epochs),
            .augment = true,
            .views = s_.views,
            .feature_bank = &bank_,
            .seed = seed,
            .log_csv = s_.out / "logs" / (log + ".csv"),
            .progress = progress};
  }

  template <class M, class E>
  void pretrain(M& model, const std::string& name, const Subset<PreloadedImages>& train, const E& test) {
    const auto start = std::chrono::steady_clock::now();
    TrainOptions o = options("base_" + file_name(name), s_.base_epochs, train.size(), s_.base_seed, true,
                             ProgressStyle::automatic);
    o.views = 0;  // a fresh augmentation every epoch
    Trainer(model, Sgd{.lr = 0.01f}, strategy::whole_network, o).fit(train, s_.base_epochs);
    const Accuracy a = evaluate(model, test);
    std::printf("  %s: %.0f s\n", name.c_str(), seconds_since(start));
    results_.add("table2", name, "source", 0, a);
    save_checkpoint(s_.out / ("base_" + file_name(name) + ".ckpt"), model, nullptr,
                    CheckpointInfo{.metadata = source_metadata_});
  }

  template <class A, class B, class MA, class MB, class E>
  void average_on_source(const std::string& name, MA& a, MB& b, const E& test) {
    Model<Average<A, B>> average;
    copy_parameters(a, average.template base<0>());
    copy_parameters(b, average.template base<1>());
    results_.add("table2", name, "source", 0, evaluate(average, test));
  }

  template <class Joint, class MA, class MB, class E>
  Accuracy train_source(const std::string& table, const std::string& row, Model<Joint>& joint, MA& a, MB& b, int seed,
                    const Subset<PreloadedImages>& train, const E& test) {
    copy_parameters(a, joint.template base<0>());
    copy_parameters(b, joint.template base<1>());
    Trainer(joint, Sgd{.lr = 0.01f}, strategy::combination_layers,
            options("source_" + file_name(row) + "_seed" + std::to_string(seed), s_.head_epochs, train.size(), seed, false))
        .fit(train, s_.head_epochs, test);
    const Accuracy accuracy = evaluate(joint, test, bank_);
    results_.add(table, row, "source", seed, accuracy);
    return accuracy;
  }

  template <class Joint, class MA, class MB, class E>
  void train_variant(const std::string& row, MA& a, MB& b, int seed, const Subset<PreloadedImages>& train, const E& test) {
    auto joint = std::make_unique<Model<Joint>>(seed);
    train_source("table1", row, *joint, a, b, seed, train, test);
  }

  // Step (c): every target model starts from source-trained layers except its new softmax.
  template <class HomJoint, class HetJoint, class E>
  void transfer(int seed, Model<D>& d, Model<D>& d2, Model<VD>& vd, HomJoint& hom, HetJoint& het,
                const Subset<PreloadedImages>& train, const E& test) {
    auto single_d = single(d, "D", seed, train, test);
    auto single_d2 = single(d2, "D'", seed, train, test);
    auto single_vd = single(vd, "VD", seed, train, test);
    average_on_target("[D,D']+avg", seed, *single_d, *single_d2, test);
    average_on_target("[D,VD]+avg", seed, *single_d, *single_vd, test);

    auto [hom_t, hom_accuracy] =
        joint_on_target<TargetJoint<D, D>>(hom, "[D,D']+2CL", strategy::combination_layers, seed, train, test, false);
    results_.add("table2", "[D,D']+2CL", "target", seed, hom_accuracy);
    joint_on_target<TargetJoint<D, VD>>(het, "[D,VD]+2CL", strategy::softmax_only, seed, train, test, true);
    auto [het_t, het_accuracy] =
        joint_on_target<TargetJoint<D, VD>>(het, "[D,VD]+2CL", strategy::combination_layers, seed, train, test, true);
    results_.add("table2", "[D,VD]+2CL", "target", seed, het_accuracy);
    if (seed <= s_.deep_seeds) {
      fine_tune_deeper(*het_t, strategy::base_top_layers, seed, train, test);
      fine_tune_deeper(*het_t, strategy::whole_network, seed, train, test);
    }
    if (seed == 1) {
      analyse(*hom_t, *het_t, *single_d, *single_vd, test);
      save_checkpoint(s_.out / "target_DVD_2CL.ckpt", *het_t, nullptr, CheckpointInfo{.metadata = metadata_});
    }
  }

  // A single network with its two top layers fine-tuned (Fig. 5b): fc7 from the source task.
  template <class Base, class E>
  std::unique_ptr<Model<TargetSingle<Base>>> single(Model<Base>& base, const std::string& name, int seed,
                                                    const Subset<PreloadedImages>& train, const E& test) {
    auto model = std::make_unique<Model<TargetSingle<Base>>>(seed);
    copy_parameters(base, model->template base<0>());
    // fc7 of D, fc15 of VD: the base's second weight layer from the top.
    const std::string penultimate = base.names()[top_weight_layer_index<Base>(2)];
    copy_layers(base, *model, {{"cl/fc1", penultimate}});
    Trainer(*model, Sgd{.lr = 0.01f}, strategy::combination_layers,
            options("target_" + file_name(name) + "_seed" + std::to_string(seed), s_.head_epochs, train.size(), seed, false))
        .fit(train, s_.head_epochs, test);
    results_.add("table2", name, "target", seed, evaluate(*model, test, bank_));
    return model;
  }

  template <class MA, class MB, class E>
  void average_on_target(const std::string& row, int seed, MA& a, MB& b, const E& test) {
    const auto pa = predict(a, test, bank_), pb = predict(b, test, bank_);
    constexpr int classes = caltech101::target_classes;
    AccuracyCounter counter;
    for (std::size_t i = 0; i < test.size(); ++i) {
      std::array<float, classes> mean{};
      for (int c = 0; c < classes; ++c) mean[std::size_t(c)] = 0.5f * (pa[i * classes + c] + pb[i * classes + c]);
      const int label = test.label(i);
      counter.add(mean.data(), classes, std::span<const int>(&label, 1),
                  -std::log(std::max(double(mean[std::size_t(label)]), 1e-30)));
    }
    results_.add("table2", row, "target", seed, counter.result());
  }

  // The joint trained on the source task, with a new softmax for the target task, and its
  // test accuracy.
  template <class Target, class Source, class E>
  std::pair<std::unique_ptr<Model<Target>>, Accuracy> joint_on_target(Source& source, const std::string& name, const Strategy& strategy,
                                                 int seed, const Subset<PreloadedImages>& train, const E& test,
                                                 bool table4) {
    auto model = std::make_unique<Model<Target>>(seed);
    copy_parameters(source.template base<0>(), model->template base<0>());
    copy_parameters(source.template base<1>(), model->template base<1>());
    copy_layers(source, *model, {{"cl/fc1", "cl/fc1"}});
    const std::string log = "target_" + file_name(name) + "_" + file_name(std::string(strategy.name)) + "_seed" +
                            std::to_string(seed);
    Trainer(*model, Sgd{.lr = 0.01f}, strategy, options(log, s_.head_epochs, train.size(), seed, false))
        .fit(train, s_.head_epochs, test);
    const Accuracy accuracy = evaluate(*model, test, bank_);
    if (table4) results_.add("table4", std::string(strategy.name), "target", seed, accuracy);
    return {std::move(model), accuracy};
  }

  // Table 4's deeper rows: from the joint trained with softmax + fc-alpha, fine-tune further
  // at a tenth of the learning rate (the bases train, so nothing is cached).
  template <class M, class E>
  void fine_tune_deeper(M& trained, const Strategy& strategy, int seed, const Subset<PreloadedImages>& train,
                        const E& test) {
    const auto start = std::chrono::steady_clock::now();
    auto model = std::make_unique<M>();
    copy_parameters(trained, *model);
    const std::string log = "target_DVD_2CL_" + file_name(std::string(strategy.name)) + "_seed" + std::to_string(seed);
    TrainOptions o = options(log, s_.finetune_epochs, train.size(), seed, false, ProgressStyle::automatic);
    Trainer(*model, Sgd{.lr = 0.001f}, strategy, o).fit(train, s_.finetune_epochs);
    results_.add("table4", std::string(strategy.name), "target", seed, evaluate(*model, test));
    std::printf("  (%s: %.0f s)\n", std::string(strategy.name).c_str(), seconds_since(start));
  }

  // Fig. 3 and Fig. 4 on the target test set.
  template <class Hom, class Het, class SD, class SVD, class E>
  void analyse(Hom& hom, Het& het, SD& single_d, SVD& single_vd, const E& test) {
    write_fig3(s_.out / "fig3_homogeneous.csv", hom, test, false);
    write_fig3(s_.out / "fig3_heterogeneous.csv", het, test, true);
    write_fc_features(s_.out / "fig4_D.csv", single_d, test);
    write_fc_features(s_.out / "fig4_VD.csv", single_vd, test);
    write_fc_features(s_.out / "fig4_joint.csv", het, test);
  }

  // For each class c, the mean over its test images of |d log p_c / d concatenation|; then the
  // mean over classes, each base's units sorted in descending order. With `activations`, also
  // each unit's mean activation (Fig. 3c: are the bases' features on the same scale?).
  template <class M, class E>
  void write_fig3(const fs::path& file, M& model, const E& test, bool activations) {
    using Net = typename M::net;
    constexpr std::size_t width = std::size_t(Net::concat_width);
    const int classes = s_.target_classes;
    std::vector<double> per_class(static_cast<std::size_t>(classes) * width), mean_activation(width);
    std::vector<int> count(static_cast<std::size_t>(classes));
    for_each_cached_batch(model, test, bank_, [&](std::size_t, std::span<const int> labels, const auto&) {
      model.backward(labels, {.input_gradient = true});
      const float* g = model.concat_gradient();
      const float* concat = model.head().input().data();
      const double n = double(labels.size());
      for (std::size_t s = 0; s < labels.size(); ++s) {
        const auto c = std::size_t(labels[s]);
        ++count[c];
        for (std::size_t u = 0; u < width; ++u) {
          // backward gives d(mean loss)/d concat = -(1/n) d log p_label / d concat
          per_class[c * width + u] += std::abs(-n * double(g[s * width + u]));
          mean_activation[u] += double(concat[s * width + u]);
        }
      }
    });
    std::vector<double> importance(width);
    int present = 0;
    for (int c = 0; c < classes; ++c) {
      if (count[std::size_t(c)] == 0) continue;
      ++present;
      for (std::size_t u = 0; u < width; ++u)
        importance[u] += per_class[std::size_t(c) * width + u] / count[std::size_t(c)];
    }
    for (auto& v : importance) v /= std::max(present, 1);
    for (auto& v : mean_activation) v /= double(test.size());
    std::vector<std::vector<double>> columns;
    std::vector<std::string> names;
    std::size_t offset = 0;
    auto split_sorted = [&](const std::vector<double>& values, const std::string& what) {
      offset = 0;
      model.for_each_base([&]<std::size_t I>(const auto&) {
        constexpr std::size_t size = M::template feature_size<I>;
        std::vector<double> part(values.begin() + long(offset), values.begin() + long(offset + size));
        std::sort(part.begin(), part.end(), std::greater<>());
        columns.push_back(std::move(part));
        names.push_back(what + "_base" + std::to_string(I));
        offset += size;
      });
    };
    split_sorted(importance, "gradient");
    if (activations) split_sorted(mean_activation, "activation");
    std::ofstream out(file);
    out << "rank";
    for (const auto& n : names) out << "," << n;
    out << "\n";
    std::size_t rows = 0;
    for (const auto& c : columns) rows = std::max(rows, c.size());
    for (std::size_t r = 0; r < rows; ++r) {
      out << r;
      for (const auto& c : columns) out << "," << (r < c.size() ? std::to_string(c[r]) : "");
      out << "\n";
    }
    if (!out) throw IoError(file, "cannot write the Fig. 3 data");
  }

  // Fig. 4: the fc-alpha activations (the last fc layer before the softmax) with labels.
  template <class M, class E>
  void write_fc_features(const fs::path& file, M& model, const E& test) {
    std::ofstream out(file);
    out << "label";
    for (int u = 0; u < 512; ++u) out << ",f" << u;
    out << "\n";
    for_each_cached_batch(model, test, bank_, [&](std::size_t, std::span<const int> labels, const auto&) {
      const auto& fc = model.head().template activation<0>();
      const std::size_t size = std::size_t(fc.shape().size());
      for (std::size_t s = 0; s < labels.size(); ++s) {
        out << labels[s];
        for (std::size_t u = 0; u < size; ++u) out << "," << fc[s * size + u];
        out << "\n";
      }
    });
    if (!out) throw IoError(file, "cannot write the Fig. 4 features");
  }

  // ---- tables
  [[nodiscard]] std::string render_tables() const {
    std::ostringstream md;
    char line[256];
    auto best_of = [&](const std::vector<const char*>& rows, const char* task) {
      double best = 0;
      for (const char* r : rows) best = std::max(best, results_.summary("table2", r, task).mean);
      return best;
    };
    md << "Table 2-like: top-1 accuracy (%), mean ± sd over " << s_.seeds
       << " seeds of the combination and transfer steps (the bases are trained once); gain over the better of the "
          "row's bases\n\n";
    md << "| model | target top-1 | gain | target top-5 | source top-1 | gain |\n|---|---|---|---|---|---|\n";
    const std::vector<std::pair<const char*, std::vector<const char*>>> rows{
        {"D", {}}, {"D'", {}}, {"VD", {}}, {"[D,D']+avg", {"D", "D'"}}, {"[D,VD]+avg", {"D", "VD"}},
        {"[D,D']+2CL", {"D", "D'"}}, {"[D,VD]+2CL", {"D", "VD"}}};
    for (const auto& [row, bases] : rows) {
      const auto t = results_.summary("table2", row, "target");
      const auto src = results_.summary("table2", row, "source");
      std::snprintf(line, sizeof line, "| %s | %s | %s | %.2f | %s | %s |\n", row, cell(t).c_str(),
                    bases.size() ? gain(t, best_of(bases, "target")).c_str() : "-", t.top5, cell(src).c_str(),
                    bases.size() ? gain(src, best_of(bases, "source")).c_str() : "-");
      md << line;
    }
    const double d = results_.summary("table2", "D", "target").mean, vd = results_.summary("table2", "VD", "target").mean;
    const double ds = results_.summary("table2", "D", "source").mean, vds = results_.summary("table2", "VD", "source").mean;
    std::snprintf(line, sizeof line, "\nVD is %s than D here: %.2f vs %.2f %% on the target task, %.2f vs %.2f %% on the source task (the paper: VD stronger).\n",
                  vd > d ? "stronger" : "weaker", vd, d, vds, ds);
    md << line;

    md << "\nTable 1-like: [D,VD] combination networks on the source task, top-1 (%)\n\n| architecture | top-1 | top-5 |\n|---|---|---|\n";
    for (const char* row : {"2CL fc-alpha 512", "2CL fc-alpha 640", "2CL fc-alpha 768", "3CL 512-768 (Fig. 5c)",
                            "3CL 512-768 (Fig. 5d)"}) {
      const auto r = results_.summary("table1", row, "source");
      std::snprintf(line, sizeof line, "| %s | %s | %.2f |\n", row, cell(r).c_str(), r.top5);
      md << line;
    }
    md << "\nTable 4-like: fine-tuning depth of [D,VD]+2CL on the target task, top-1 (%)\n\n| trained | top-1 | top-5 | seeds |\n|---|---|---|---|\n";
    for (const Strategy& st : {strategy::softmax_only, strategy::combination_layers, strategy::base_top_layers,
                               strategy::whole_network}) {
      const auto r = results_.summary("table4", std::string(st.name), "target");
      std::snprintf(line, sizeof line, "| %s | %s | %.2f | %d |\n", std::string(st.name).c_str(), cell(r).c_str(), r.top5, r.n);
      md << line;
    }
    md << "\n(the last two rows continue from the softmax + fc-alpha model for " << s_.finetune_epochs
       << " epoch(s) at a tenth of the learning rate)\n";
    return md.str();
  }

  static std::string file_name(const std::string& name) {
    std::string out;
    for (char c : name) {
      if (std::isalnum(static_cast<unsigned char>(c))) out += c;
      else if (c == '\'') out += '2';
      else if (!out.empty() && out.back() != '_') out += '_';
    }
    while (!out.empty() && out.back() == '_') out.pop_back();
    return out;
  }
  // One name per line for each of the network's outputs (a task with fewer classes, as --tiny,
  // leaves the rest unused).
  static std::string class_names(const std::vector<std::string>& names, int outputs) {
    std::string all;
    for (int c = 0; c < outputs; ++c)
      all += (c ? "\n" : "") + (std::size_t(c) < names.size() ? names[std::size_t(c)] : "(unused " + std::to_string(c) + ")");
    return all;
  }
  static double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  Settings s_;
  FeatureBank<float> bank_;
  Results results_;
  std::map<std::string, std::string> metadata_;         // of the target-task checkpoints (hcnn_classify)
  std::map<std::string, std::string> source_metadata_;  // of the bases'
};

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress goes to stderr: keep the two in order in a log
  try {
    Experiment(parse(argc, argv)).run();
  } catch (const std::exception& e) {
    std::cerr << "hcnn_caltech101: " << e.what() << "\n";
    return 1;
  }
}
