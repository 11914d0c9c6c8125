// Training: Caffe's learning-rate policies, the Trainer end to end (exact resume in training
// mode, cached features equal to recomputed bases), progress output, the CSV log, and a short
// run on real images that beats chance clearly.
#include <catch2/catch.hpp>
#include <hcnn/hcnn.hpp>

#include <fstream>
#include <limits>

#include "parameter_values.hpp"
#include "temp_dir.hpp"

using namespace hcnn;
using hcnn::testing::TempDir;

namespace {

// Four classes of 2x9x9 patterns (a bright quadrant per class) with noise; augmentation
// mirrors and shifts the brightness, so views differ.
class Patterns {
 public:
  explicit Patterns(std::size_t n) : n_(n) {}
  [[nodiscard]] std::size_t size() const { return n_; }
  [[nodiscard]] Shape shape() const { return {2, 9, 9}; }
  [[nodiscard]] int label(std::size_t i) const { return int(i % 4); }
  void load(std::size_t i, float* out, Rng* augment) const {
    Rng noise(77, i);
    const int quadrant = label(i);
    const bool mirror = augment != nullptr && augment->uniform() < 0.5;
    const float shift = augment != nullptr ? float(augment->normal(0.0, 0.1)) : 0.0f;
    for (int c = 0; c < 2; ++c)
      for (int h = 0; h < 9; ++h)
        for (int w = 0; w < 9; ++w) {
          const int ww = mirror ? 8 - w : w;
          const bool bright = (h < 5) == (quadrant < 2) && (ww < 5) == (quadrant % 2 == 0);
          out[(c * 9 + h) * 9 + w] = (bright ? 1.0f : 0.0f) + shift + float(noise.normal(0.0, 0.3));
        }
  }

 private:
  std::size_t n_;
};

using A = Net<Input<2, 9, 9>, Conv<4, 3>, MaxPool<2, 2>, FC<6>, Dropout<0.5f>, FC<5>, Dropout<0.5f>, Softmax<4>>;
using B = Net<Input<2, 7, 7>, Conv<3, 3, 1, 1, 1, Identity>, BatchNorm<ReLU>, MaxPool<2, 2>, FC<5>, Dropout<0.5f>, FC<4>,
              Dropout<0.5f>, Softmax<4>>;
using Joint = Combination<A, B, FC<6>, Softmax<4>>;

std::size_t count_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

}  // namespace

TEST_CASE("Learning-rate policies compute Caffe's rates", "[train][schedule]") {
  CHECK(Schedule::fixed().multiplier(12345) == 1.0);
  const auto step = Schedule::step(10, 0.1);
  CHECK(step.multiplier(9) == 1.0);
  CHECK(step.multiplier(10) == Approx(0.1));
  CHECK(step.multiplier(25) == Approx(0.01));
  const auto multi = Schedule::multistep({5, 8}, 0.5);
  CHECK(multi.multiplier(4) == 1.0);
  CHECK(multi.multiplier(5) == 0.5);
  CHECK(multi.multiplier(8) == 0.25);
  CHECK(Schedule::poly(100, 2.0).multiplier(50) == Approx(0.25));
  CHECK(Schedule::poly(100, 2.0).multiplier(100) == 0.0);
  const auto cosine = Schedule::warmup_cosine(10, 110);
  CHECK(cosine.multiplier(0) == Approx(0.1));
  CHECK(cosine.multiplier(9) == Approx(1.0));
  CHECK(cosine.multiplier(10) == Approx(1.0));
  CHECK(cosine.multiplier(60) == Approx(0.5));
  CHECK(cosine.multiplier(110) == Approx(0.0).margin(1e-12));
  CHECK_THROWS_WITH(Schedule::warmup_cosine(10, 5), Catch::Contains("0 <= warmup < max_iter"));
}

TEST_CASE("A diverged training run stops with an error naming the first non-finite blob", "[train][errors]") {
  TempDir dir;
  const Patterns data(40);
  const TrainOptions options{.batch_size = 8, .views = 0, .seed = 5, .checkpoint = dir / "run.ckpt",
                             .progress = ProgressStyle::none};
  // A learning rate far too high: the weights grow huge (finite) and the next forward pass overflows.
  Model<A> model(1);
  CHECK_THROWS_WITH(Trainer(model, Sgd{.lr = 1e30f}, strategy::whole_network, options).fit(data, 3),
                    Catch::Matches("Trainer: the loss is (nan|inf) at epoch 1, iteration [0-9]+ \\(learning rate 1e\\+30\\): "
                                   "every parameter is finite, so the batch's inputs are not or a layer's output overflowed\\. "
                                   "Training stopped; the checkpoint .*run.ckpt holds the last finished epoch\\..*"));
  CHECK(!std::filesystem::exists(dir / "run.ckpt"));  // no epoch finished: nothing saved
  // A NaN weight (loaded behind hcnn's back) is named.
  Model<A> poisoned(1);
  const auto params = poisoned.parameters();
  params[0].param->value[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(Trainer(poisoned, Sgd{.lr = 0.01f}, strategy::whole_network, options).fit(data, 3),
                    Catch::Contains("the loss is nan at epoch 1, iteration 1 (learning rate 0.01): layer '" +
                                    params[0].layer + "' weight holds nan at index 3. Training stopped"));

  // Finite parameters but a NaN in the data: the message says so.
  class Poisoned : public Patterns {
   public:
    using Patterns::Patterns;
    void load(std::size_t i, float* out, Rng* augment) const {
      Patterns::load(i, out, augment);
      if (i == 13) std::fill(out, out + shape().size(), std::numeric_limits<float>::quiet_NaN());
    }
  };
  Model<A> clean(1);
  CHECK_THROWS_WITH(Trainer(clean, Sgd{.lr = 0.01f}, strategy::whole_network, TrainOptions{.progress = ProgressStyle::none})
                        .fit(Poisoned(40), 1),
                    Catch::Contains("the loss is nan at epoch 1, iteration 1") &&
                        Catch::Contains("every parameter is finite, so the batch's inputs are not") &&
                        Catch::Contains("nothing was saved"));
}

TEST_CASE("Resuming from a checkpoint equals the uninterrupted run in training mode", "[train][checkpoint]") {
  TempDir dir;
  const Patterns data(40);
  const TrainOptions options{.batch_size = 8, .schedule = Schedule::step(7, 0.5), .views = 3, .seed = 5,
                             .progress = ProgressStyle::none};
  // Whole network: dropout drops, BatchNorm trains and moves its statistics.
  Model<Joint> straight(1);
  Trainer(straight, Sgd{.lr = 0.05f}, strategy::whole_network, options).fit(data, 4);

  auto with_checkpoint = options;
  with_checkpoint.checkpoint = dir / "run.ckpt";
  with_checkpoint.log_csv = dir / "log.csv";
  Model<Joint> first(1);
  Trainer(first, Sgd{.lr = 0.05f}, strategy::whole_network, with_checkpoint).fit(data, 2);
  Model<Joint> resumed(77);  // another seed: everything must come from the checkpoint
  Trainer trainer(resumed, Sgd{.lr = 0.05f}, strategy::whole_network, with_checkpoint);
  const auto reports = trainer.fit(data, 4);
  REQUIRE(reports.size() == 2);
  CHECK(reports.front().epoch == 3);
  CHECK(trainer.iteration() == 4 * 5);
  CHECK(trainer.epochs_done() == 4);
  CHECK(testing::parameter_values(resumed) == testing::parameter_values(straight));  // bit for bit
  CHECK(count_lines(dir / "log.csv") == 1 + 4);
}

TEST_CASE("Training from cached features equals recomputing the frozen bases", "[train][cache]") {
  const Patterns data(36);
  TrainOptions options{.batch_size = 12, .views = 3, .seed = 2, .progress = ProgressStyle::none};
  Model<Joint> cached(4), recomputed(4);
  Trainer with_cache(cached, Sgd{.lr = 0.1f}, strategy::combination_layers, options);
  with_cache.fit(data, 3);
  CHECK(with_cache.used_cache());
  options.cache_features = false;
  Trainer without(recomputed, Sgd{.lr = 0.1f}, strategy::combination_layers, options);
  without.fit(data, 3);
  CHECK_FALSE(without.used_cache());
  auto require_same = [&] {
    const auto a = testing::parameter_values(cached), b = testing::parameter_values(recomputed);
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-5).margin(1e-6));
  };
  require_same();
  // A later fit() on another training set caches that set, not the first one.
  const Patterns more(52);
  with_cache.fit(more, 5);
  without.fit(more, 5);
  CHECK(with_cache.used_cache());
  require_same();
}

TEST_CASE("Progress prints plain lines when the output is not a terminal", "[train][progress]") {
  TempDir dir;
  std::FILE* out = std::fopen((dir / "progress.txt").c_str(), "w");
  REQUIRE(out != nullptr);
  Progress progress(ProgressStyle::automatic, out);  // a file: lines, not a bar
  progress.start("epoch 1/1", 100);
  for (std::size_t i = 1; i <= 100; ++i) progress.update(i, "loss 1.0");
  progress.finish();
  std::fclose(out);
  const auto lines = count_lines(dir / "progress.txt");
  CHECK(lines >= 10);
  CHECK(lines <= 12);
  std::ifstream in(dir / "progress.txt");
  std::string first;
  std::getline(in, first);
  CHECK_THAT(first, Catch::StartsWith("epoch 1/1 1/100 loss 1.0"));
}

TEST_CASE("Three-step training on Fashion-MNIST beats chance clearly", "[train][fashion]") {
  using SmallD = Net<Input<1, 28, 28>, Conv<16, 5>, MaxPool<2, 2>, FC<64>, Dropout<0.5f>, FC<32>, Dropout<0.5f>,
                     Softmax<10>>;
  using SmallVD = Net<Input<1, 28, 28>, Conv<8, 3, 1, 1, 1, Identity>, BatchNorm<ReLU>, Conv<8, 3, 1, 1, 1, Identity>,
                      BatchNorm<ReLU>, MaxPool<2, 2>, Conv<16, 3, 1, 1>, MaxPool<2, 2>, FC<64>, Dropout<0.5f>, FC<32>,
                      Dropout<0.5f>, Softmax<10>>;
  const FashionMnist all;
  std::vector<std::size_t> train_idx(1200), test_idx(500);
  std::iota(train_idx.begin(), train_idx.end(), 0);
  std::iota(test_idx.begin(), test_idx.end(), 50000);
  const Subset<FashionMnist> train(all, train_idx), test(all, test_idx);
  const TrainOptions options{.batch_size = 32, .augment = false, .seed = 3, .progress = ProgressStyle::none};

  // (a) pre-train the bases.
  Model<SmallD> d(1);
  Model<SmallVD> vd(2);
  Trainer(d, Sgd{.lr = 0.02f}, strategy::whole_network, options).fit(train, 3);
  Trainer(vd, Sgd{.lr = 0.02f}, strategy::whole_network, options).fit(train, 3);
  const Accuracy best_base = std::max(evaluate(d, test), evaluate(vd, test), [](auto& a, auto& b) { return a.top1 < b.top1; });
  // (b) train the combination layers on their features.
  Model<Combination<SmallD, SmallVD, FC<64>, Softmax<10>>> joint(3);
  copy_parameters(d, joint.base<0>());
  copy_parameters(vd, joint.base<1>());
  Trainer trainer(joint, Sgd{.lr = 0.02f}, strategy::combination_layers, options);
  trainer.fit(train, 3);
  CHECK(trainer.used_cache());
  const Accuracy combined = evaluate(joint, test);
  INFO("best base " << best_base << "; combination " << combined);
  CHECK(best_base.top1 > 0.5);  // chance is 0.1
  CHECK(combined.top1 > 0.5);
  CHECK(combined.top5 > combined.top1);
}

TEST_CASE("A FeatureBank shares frozen features between models and never serves stale ones", "[train][cache][bank]") {
  const Patterns train(24), test(10);
  FeatureBank<float> bank;
  TrainOptions options{.batch_size = 8, .views = 2, .feature_bank = &bank, .seed = 3, .progress = ProgressStyle::none};
  Model<Joint> banked(5), alone(5);
  Trainer(banked, Sgd{.lr = 0.1f}, strategy::combination_layers, options).fit(train, 2);
  CHECK(bank.entries() == 2);  // one per base
  TrainOptions no_bank = options;
  no_bank.feature_bank = nullptr;
  Trainer(alone, Sgd{.lr = 0.1f}, strategy::combination_layers, no_bank).fit(train, 2);
  const auto a = testing::parameter_values(banked), b = testing::parameter_values(alone);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == b[i]);

  // Another Combination holding base A (and a one-base one) adds nothing for A.
  using WithA = Combination<A, FC<7>, Softmax<4>>;
  Model<WithA> other(9);
  copy_parameters(banked.base<0>(), other.base<0>());
  Trainer(other, Sgd{.lr = 0.1f}, strategy::combination_layers, options).fit(train, 1);
  CHECK(bank.entries() == 2);

  // Evaluating from the bank equals evaluating by recomputing (and adds the test set's entries).
  const Accuracy recomputed = evaluate(banked, test);
  const Accuracy cached = evaluate(banked, test, bank);
  CHECK(bank.entries() == 4);
  CHECK(cached.top1 == recomputed.top1);
  CHECK(cached.loss == Approx(recomputed.loss).epsilon(1e-6));
  Tensor<float> x(int(test.size()), Joint::input_shape);
  for (std::size_t i = 0; i < test.size(); ++i) test.load(i, x.sample(int(i)), nullptr);
  const auto p = predict(banked, test, bank);
  const auto& direct = banked.forward(x, Mode::test);
  REQUIRE(p.size() == direct.size());
  for (std::size_t i = 0; i < p.size(); ++i) CHECK(p[i] == Approx(direct[i]).epsilon(1e-5).margin(1e-7));

  // A base whose weights changed is a new entry: its old features are not reused.
  banked.base<1>().parameters().front().param->value[0] += 0.5f;
  const Accuracy changed = evaluate(banked, test, bank);
  CHECK(bank.entries() == 5);
  CHECK(changed.loss == Approx(evaluate(banked, test).loss).epsilon(1e-6));
}

TEST_CASE("copy_layers moves whole layers under other names, or nothing", "[combination]") {
  Model<A> a(1);
  using Single = Combination<A, FC<5>, Softmax<4>>;  // one base: A's 5-wide FC becomes fc-alpha
  Model<Single> single(2);
  const std::string fc = a.names()[top_weight_layer_index<A>(2)];  // the 5-wide FC
  copy_layers(a, single, {{"cl/fc1", fc}});
  const auto from = a.parameters(), to = single.parameters();
  auto blob = [](const auto& all, const std::string& layer, const std::string& name) {
    for (const auto& p : all)
      if (p.layer == layer && p.param->name == name) return std::vector<float>(p.param->value.begin(), p.param->value.end());
    FAIL("no blob " << layer << "." << name);
    return std::vector<float>{};
  };
  CHECK(blob(from, fc, "weight") == blob(to, "cl/fc1", "weight"));
  CHECK(blob(from, fc, "bias") == blob(to, "cl/fc1", "bias"));
  const auto before = testing::parameter_values(single);
  CHECK_THROWS_WITH(copy_layers(a, single, {{"cl/fc1", fc}, {"cl/fc9", fc}}),
                    Catch::Contains("the target has no layer cl/fc9"));
  CHECK_THROWS_WITH(copy_layers(a, single, {{"cl/fc2", fc}}),
                    Catch::Contains("blob " + fc + ".weight is") && Catch::Contains("in the source and cl/fc2.weight is"));
  CHECK(testing::parameter_values(single) == before);
}
