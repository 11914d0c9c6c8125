// hcnn/train/trainer.hpp — training a model: step (b) and (c) of the paper's three steps.
//
//   Trainer trainer{model, Sgd{.lr = 1e-3f, .momentum = 0.9f, .weight_decay = 5e-4f},
//                   strategy::combination_layers, {.schedule = Schedule::step(1000)}};
//   trainer.fit(train, /*epochs=*/20, test);
//
// fit() runs SGD on softmax cross-entropy over shuffled, augmented batches, with the learning
// rate of the schedule at each iteration; the strategy decides which layers train (and so what
// backward computes). With the bases of a Combination frozen, their features are computed once
// per image and view (FeatureCache) and the CLs train from the cache (and the test set's, once
// per fit, for the evaluation after each epoch). A Cuda model's other steps are replayed from
// a CUDA graph (cuda::TrainingGraph), which makes the update before the loss is read: a step
// whose loss is not finite has then reached the weights in memory, not the checkpoint. Every
// epoch is reported on the progress bar, appended to a CSV log and, if asked, saved to a
// checkpoint that a later fit() resumes from exactly: the same batches, views, dropout masks,
// BatchNorm statistics, momentum and learning rate as the uninterrupted run (for a fixed
// thread count).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/finite.hpp"
#include "../io/checkpoint.hpp"
#include "../io/dataset.hpp"
#include "feature_cache.hpp"
#include "metrics.hpp"
#include "progress.hpp"
#include "schedule.hpp"
#include "sgd.hpp"
#include "strategy.hpp"

namespace hcnn {

struct TrainOptions {
  int batch_size = 64;
  Schedule schedule = Schedule::fixed();
  bool augment = true;         // the dataset's random crop and mirror
  int views = 10;              // fixed augmented views per image (0: a fresh view every epoch, no cache)
  bool cache_features = true;  // frozen Combination bases: compute their features once per image and view
  bool graph_steps = true;     // Cuda: replay each step from a CUDA graph (backend/cuda/graph.hpp)
  FeatureBank<float>* feature_bank = nullptr;  // share them with other float models' caches (and the test set's)
  std::uint64_t seed = 1;      // shuffling, views
  std::filesystem::path log_csv;     // one row per epoch, appended
  std::filesystem::path checkpoint;  // written after every epoch; fit() resumes from it if it exists
  std::map<std::string, std::string> checkpoint_metadata;  // e.g. "classes", "preprocess" for hcnn_classify
  ProgressStyle progress = ProgressStyle::automatic;
};

struct EpochReport {
  int epoch = 0;
  std::uint64_t iteration = 0;  // iterations done at the end of the epoch
  double lr = 0;                // the learning rate of the epoch's last step
  double train_loss = 0, train_top1 = 0;
  std::optional<Accuracy> test;
  double images_per_second = 0, seconds = 0;
  bool from_cache = false;
};

struct NoFeatureCache {};

// What replays a model's training steps from a captured graph, or void where its backend has
// none: backend/cuda/graph.hpp names cuda::TrainingGraph for Cuda models.
template <class ModelT>
struct TrainingGraphOf {
  using type = void;
};
struct NoTrainingGraph {};

template <class ModelT>
class Trainer {
  static constexpr bool caches = is_combination<typename ModelT::net>;
  using Cache = std::conditional_t<caches, FeatureCache<ModelT>, NoFeatureCache>;
  static constexpr bool graphs = !std::is_void_v<typename TrainingGraphOf<ModelT>::type>;
  using Graph = std::conditional_t<graphs, typename TrainingGraphOf<ModelT>::type, NoTrainingGraph>;

 public:
  using T = typename ModelT::value_type;
  static_assert(std::is_same_v<T, float> || !std::is_floating_point_v<T>,
                "Trainer: trains float models, and Cuda models in BF16 storage (datasets load float images)");

  Trainer(ModelT& model, Sgd sgd, Strategy strategy = strategy::combination_layers, TrainOptions options = {})
      : model_(&model), sgd_(sgd), solver_(sgd), options_(std::move(options)) {
    if (options_.batch_size <= 0) throw Error("Trainer: the batch size must be positive");
    apply_strategy(model, strategy);
    params_ = model.parameters();
  }

  // Trains until `epochs` epochs are done (a resumed run counts those already in its
  // checkpoint), evaluating on `test` after each epoch if given.
  template <Dataset D>
  std::vector<EpochReport> fit(const D& train, int epochs) {
    return fit_impl(train, epochs, static_cast<const D*>(nullptr));
  }
  template <Dataset D, Dataset E>
  std::vector<EpochReport> fit(const D& train, int epochs, const E& test) {
    return fit_impl(train, epochs, &test);
  }

  [[nodiscard]] SgdSolver<T, typename ModelT::backend>& solver() { return solver_; }
  [[nodiscard]] std::uint64_t iteration() const { return iteration_; }
  [[nodiscard]] int epochs_done() const { return epochs_done_; }
  // Whether the last fit() trained from cached features.
  [[nodiscard]] bool used_cache() const { return cache_ != nullptr; }

 private:
  template <Dataset D, class E>
  std::vector<EpochReport> fit_impl(const D& train, int epochs, const E* test) {
    if (train.shape() != ModelT::input_shape)
      throw ShapeError("Trainer: the training set gives " + to_string(train.shape()) + " samples, the model expects " +
                       to_string(ModelT::input_shape));
    resume();
    std::vector<EpochReport> reports;
    if (epochs_done_ >= epochs) return reports;
    Progress progress(options_.progress);
    // The caches belong to this call's data sets (a later fit() may train on others).
    cache_.reset();
    test_cache_.reset();
    if constexpr (caches) {
      const bool cacheable = options_.cache_features && !model_->any_base_trains() && (options_.views > 0 || !options_.augment);
      if (cacheable)
        cache_ = std::make_unique<FeatureCache<ModelT>>(*model_, train, options_.views, options_.augment, options_.seed,
                                                        options_.batch_size, &progress, feature_bank());
    }
    std::unique_ptr<BatchLoader<D>> loader;
    if (!cache_)
      loader = std::make_unique<BatchLoader<D>>(
          train, typename BatchLoader<D>::Options{.batch_size = options_.batch_size, .shuffle = true,
                                                  .augment = options_.augment, .seed = options_.seed,
                                                  .views = options_.views, .first_epoch = epochs_done_ + 1});
    const std::size_t batches = (train.size() + std::size_t(options_.batch_size) - 1) / std::size_t(options_.batch_size);
    for (int epoch = epochs_done_ + 1; epoch <= epochs; ++epoch) {
      progress.start("epoch " + std::to_string(epoch) + "/" + std::to_string(epochs), batches);
      AccuracyCounter counter;
      std::size_t done = 0;
      // A step's loss, checked and counted (`applied`: the step's update has been made).
      auto count = [&](const Tensor<T, typename ModelT::backend>& probabilities, std::span<const int> labels,
                       bool applied) {
        const double loss = model_->loss(labels);
        if (!std::isfinite(loss)) throw NumericError(diverged(epoch, loss, applied));
        counter.add(probabilities, ModelT::output_shape.c, labels, loss);
      };
      auto set_learning_rate = [&] {
        solver_.config().lr = float(double(sgd_.lr) * options_.schedule.multiplier(std::int64_t(iteration_)));
      };
      auto finish = [&] {
        ++iteration_;
        const auto so_far = counter.result();
        char figures[128];
        std::snprintf(figures, sizeof figures, "loss %.3f, top-1 %.1f %%, %.0f img/s", so_far.loss, 100 * so_far.top1,
                      double(counter.count) / std::max(progress.seconds(), 1e-9));
        progress.update(++done, figures);
      };
      // The rest of a step after its forward pass.
      auto step = [&](const Tensor<T, typename ModelT::backend>& probabilities, std::span<const int> labels) {
        count(probabilities, labels, false);
        model_->backward(labels);
        set_learning_rate();
        solver_.step(params_);
        finish();
      };
      bool cached = false;
      if constexpr (caches) {
        if (cache_) {
          train_from_cache(train, epoch, step);
          cached = true;
        }
      }
      if (!cached)
        for (Batch batch; loader->next(batch);) {
          if constexpr (graphs) {
            if (options_.graph_steps) {
              if (!graph_) graph_ = std::make_unique<Graph>(*model_, solver_);
              set_learning_rate();
              count(graph_->run(batch.inputs, batch.labels), batch.labels, true);
              finish();
              continue;
            }
          }
          step(model_->forward(on_backend(batch.inputs, staging_), Mode::train), batch.labels);
        }
      progress.finish();
      EpochReport report;
      report.epoch = epoch;
      report.iteration = iteration_;
      report.lr = solver_.config().lr;
      const Accuracy seen = counter.result();
      report.train_loss = seen.loss;
      report.train_top1 = seen.top1;
      report.seconds = progress.seconds();
      report.images_per_second = double(seen.count) / std::max(report.seconds, 1e-9);
      report.from_cache = cache_ != nullptr;
      if (test != nullptr) report.test = evaluate_test(*test);
      epochs_done_ = epoch;
      if (!options_.checkpoint.empty())
        save_checkpoint(options_.checkpoint, *model_, &solver_,
                        CheckpointInfo{.iteration = iteration_, .epoch = std::uint64_t(epochs_done_),
                                       .metadata = options_.checkpoint_metadata});
      log(report);
      reports.push_back(report);
    }
    return reports;
  }

  // One epoch's steps on cached features, in the order and views the loader would give.
  template <Dataset D, class Step>
  void train_from_cache(const D& train, int epoch, Step& step) {
    const auto order = epoch_order(train.size(), true, options_.seed, std::uint64_t(epoch));
    std::vector<int> labels;
    for (std::size_t at = 0; at < order.size(); at += std::size_t(options_.batch_size)) {
      const std::span<const std::size_t> samples(order.data() + at,
                                                 std::min(order.size() - at, std::size_t(options_.batch_size)));
      labels.clear();
      for (std::size_t s : samples) labels.push_back(train.label(s));
      step(cache_->forward(*model_, samples, std::uint64_t(epoch), Mode::train), labels);
    }
  }

  // With frozen bases the test set's features are computed once per fit() (or found in the bank).
  template <Dataset E>
  Accuracy evaluate_test(const E& test) {
    if constexpr (caches) {
      if (cache_) {
        if (!test_cache_)
          test_cache_ = std::make_unique<Cache>(centre_view_cache(*model_, test, feature_bank(), options_.batch_size));
        return evaluate(*model_, test, *test_cache_, options_.batch_size);
      }
    }
    return evaluate(*model_, test, options_.batch_size);
  }

  // The options' bank holds float features: shared by float models only.
  [[nodiscard]] FeatureBank<T>* feature_bank() const {
    if constexpr (std::same_as<T, float>) return options_.feature_bank;
    else return nullptr;
  }

  // Why the loss of the next step is NaN or infinite, as far as the parameters tell.
  std::string diverged(int epoch, double loss, bool applied) {
    const auto parameter = non_finite_parameter(params_);
    char when[160];
    std::snprintf(when, sizeof when, "Trainer: the loss is %s at epoch %d, iteration %llu (learning rate %g): ",
                  non_finite_name(loss).c_str(), epoch, static_cast<unsigned long long>(iteration_ + 1),
                  double(solver_.config().lr));
    return when +
           parameter.value_or("every parameter is finite, so the batch's inputs are not or a layer's output overflowed") +
           ". Training stopped" + (applied ? " after the step's update (it ran as one CUDA graph)" : "") + "; " +
           (options_.checkpoint.empty() ? std::string("nothing was saved")
                                        : "the checkpoint " + options_.checkpoint.string() + " holds the last finished epoch") +
           ". A lower learning rate may help.";
  }

  // Picks up where the checkpoint (if any) left off; only once per Trainer.
  void resume() {
    if (resumed_ || options_.checkpoint.empty()) return;
    resumed_ = true;
    std::error_code error;
    if (!std::filesystem::exists(options_.checkpoint, error)) return;
    const CheckpointInfo info = load_checkpoint(options_.checkpoint, *model_, &solver_);
    iteration_ = info.iteration;
    epochs_done_ = static_cast<int>(info.epoch);
  }

  void log(const EpochReport& r) {
    if (options_.log_csv.empty()) return;
    std::error_code error;
    const bool fresh = !std::filesystem::exists(options_.log_csv, error) || std::filesystem::file_size(options_.log_csv, error) == 0;
    std::ofstream out(options_.log_csv, std::ios::app);
    if (!out) throw IoError(options_.log_csv, "cannot open the training log for writing");
    if (fresh) out << "epoch,iteration,lr,train_loss,train_top1,test_loss,test_top1,test_top5,images_per_second,seconds,cached\n";
    char line[320];
    std::snprintf(line, sizeof line, "%d,%llu,%.6g,%.6f,%.6f,%s,%s,%s,%.2f,%.3f,%d\n", r.epoch,
                  static_cast<unsigned long long>(r.iteration), r.lr, r.train_loss, r.train_top1,
                  r.test ? std::to_string(r.test->loss).c_str() : "", r.test ? std::to_string(r.test->top1).c_str() : "",
                  r.test ? std::to_string(r.test->top5).c_str() : "", r.images_per_second, r.seconds, int(r.from_cache));
    out << line;
    if (!out) throw IoError(options_.log_csv, "cannot write the training log");
  }

  ModelT* model_;
  Sgd sgd_;
  SgdSolver<T, typename ModelT::backend> solver_;
  TrainOptions options_;
  std::vector<NamedParam<T, typename ModelT::backend>> params_;
  Tensor<T, typename ModelT::backend> staging_;  // a Cuda model's batch, uploaded
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<Cache> test_cache_;  // the test set's centre views, while the bases stay frozen
  std::unique_ptr<Graph> graph_;       // a Cuda model's steps, replayed
  std::uint64_t iteration_ = 0;
  int epochs_done_ = 0;
  bool resumed_ = false;
};

}  // namespace hcnn
