// hcnn/io/dataset.hpp — what a dataset is, subsets and splits, and batches loaded in the
// background.
//
// A dataset is anything with size(), shape(), label(i) and load(i, float* out, Rng*). Subset
// is a view of some of its samples. BatchLoader assembles batches on a background thread: while
// the network works on one batch, the next is being decoded, so training does not wait for
// JPEG decoding. A decoding error surfaces from next() with the file's name.
#pragma once

#include <algorithm>
#include <concepts>
#include <exception>
#include <cstdint>
#include <future>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"

namespace hcnn {

template <class D>
concept Dataset = requires(const D& d, std::size_t i, float* out, Rng* rng) {
  { d.size() } -> std::convertible_to<std::size_t>;
  { d.shape() } -> std::convertible_to<Shape>;
  { d.label(i) } -> std::convertible_to<int>;
  d.load(i, out, rng);
};

// The samples of `source` at the given indices.
template <class D>
class Subset {
 public:
  Subset(const D& source, std::vector<std::size_t> indices) : source_(&source), indices_(std::move(indices)) {}
  [[nodiscard]] std::size_t size() const { return indices_.size(); }
  [[nodiscard]] Shape shape() const { return source_->shape(); }
  [[nodiscard]] int label(std::size_t i) const { return source_->label(indices_[i]); }
  void load(std::size_t i, float* out, Rng* rng = nullptr) const { source_->load(indices_[i], out, rng); }
  [[nodiscard]] const std::vector<std::size_t>& indices() const { return indices_; }
  [[nodiscard]] const D& source() const { return *source_; }

 private:
  const D* source_;
  std::vector<std::size_t> indices_;
};

// Seeded per-class split: up to `train_per_class` samples of each class for training (at least
// one left for testing), the rest for testing. Both lists keep the dataset's order.
template <class D>
std::pair<Subset<D>, Subset<D>> split_per_class(const D& data, int train_per_class, std::uint64_t seed = 0) {
  if (train_per_class <= 0) throw Error("split_per_class: train_per_class must be positive, got " + std::to_string(train_per_class));
  std::vector<std::vector<std::size_t>> by_class;
  for (std::size_t i = 0; i < data.size(); ++i) {
    const auto label = static_cast<std::size_t>(data.label(i));
    if (label >= by_class.size()) by_class.resize(label + 1);
    by_class[label].push_back(i);
  }
  std::vector<std::size_t> train, test;
  for (std::size_t c = 0; c < by_class.size(); ++c) {
    auto members = by_class[c];
    Rng rng(seed, c + 1);
    for (std::size_t i = members.size(); i > 1; --i) std::swap(members[i - 1], members[rng.below(i)]);
    const std::size_t take = std::min<std::size_t>(train_per_class, members.empty() ? 0 : members.size() - 1);
    train.insert(train.end(), members.begin(), members.begin() + static_cast<long>(take));
    test.insert(test.end(), members.begin() + static_cast<long>(take), members.end());
  }
  std::sort(train.begin(), train.end());
  std::sort(test.begin(), test.end());
  return {Subset<D>(data, std::move(train)), Subset<D>(data, std::move(test))};
}

struct Batch {
  Tensor<float> inputs;
  std::vector<int> labels;
};

// The order of an epoch's samples (1-based epochs): a seeded shuffle, the same on every
// machine, so a resumed run sees what the uninterrupted one would have.
inline std::vector<std::size_t> epoch_order(std::size_t size, bool shuffle, std::uint64_t seed, std::uint64_t epoch) {
  std::vector<std::size_t> order(size);
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (shuffle) {
    Rng rng(seed, epoch);
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  }
  return order;
}

// The view (augmentation) of a sample in an epoch: with `views` > 0 each sample cycles
// through that many fixed views, which is what lets frozen features be cached per view; with
// 0 every epoch draws a fresh one.
inline std::uint64_t view_of(std::size_t sample, std::uint64_t epoch, int views) {
  return views > 0 ? (epoch + sample) % std::uint64_t(views) : epoch;
}

// The random stream that augments view `view` of a sample.
inline Rng augmentation_rng(std::uint64_t seed, std::uint64_t view, std::size_t sample) {
  return Rng(seed ^ 0xA5A5A5A5ull, (view << 32) + sample);
}

// Iterates over a dataset in batches (the last one may be smaller), optionally shuffled anew
// each epoch, with augmentation drawn from a seeded stream per epoch. The next batch is built on
// a background thread while the caller uses the current one.
template <Dataset D>
class BatchLoader {
 public:
  struct Options {
    int batch_size = 32;
    bool shuffle = false;
    bool augment = false;  // pass an Rng to load(), enabling the dataset's random crop / mirror
    std::uint64_t seed = 0;
    int views = 0;           // > 0: each sample cycles through this many fixed views (view_of)
    int first_epoch = 1;     // where a resumed run starts
  };

  BatchLoader(const D& data, Options options) : data_(&data), options_(options), epoch_(options.first_epoch - 1) {
    if (options_.batch_size <= 0) throw Error("BatchLoader: the batch size must be positive");
    if (data.size() == 0) throw Error("BatchLoader: the dataset is empty");
    start_epoch();
  }
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;
  ~BatchLoader() {
    if (pending_.valid()) pending_.wait();
  }

  // The next batch of this epoch, or false once the epoch is over (the following call starts
  // the next epoch). A sample that fails to load stops the loader: next() throws its error
  // (naming the file) and so does every later call, so the rest of an epoch is never dropped
  // silently; fix or leave out the file and make a new loader.
  bool next(Batch& out) {
    if (failure_) std::rethrow_exception(failure_);
    if (!pending_.valid()) {
      start_epoch();
      return false;
    }
    try {
      out = pending_.get();
    } catch (...) {
      failure_ = std::current_exception();
      throw;
    }
    position_ += static_cast<std::size_t>(out.inputs.batch());
    if (position_ < order_.size()) pending_ = std::async(std::launch::async, [this, at = position_] { return build(at); });
    return true;
  }

  [[nodiscard]] std::size_t batches_per_epoch() const {
    return (data_->size() + std::size_t(options_.batch_size) - 1) / std::size_t(options_.batch_size);
  }
  [[nodiscard]] int epoch() const { return epoch_; }

 private:
  void start_epoch() {
    ++epoch_;
    order_ = epoch_order(data_->size(), options_.shuffle, options_.seed, std::uint64_t(epoch_));
    position_ = 0;
    pending_ = std::async(std::launch::async, [this] { return build(0); });
  }

  Batch build(std::size_t at) const {
    const std::size_t n = std::min<std::size_t>(std::size_t(options_.batch_size), order_.size() - at);
    Batch batch{Tensor<float>(static_cast<int>(n), data_->shape()), std::vector<int>(n)};
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t sample = order_[at + i];
      Rng rng = augmentation_rng(options_.seed, view_of(sample, std::uint64_t(epoch_), options_.views), sample);
      data_->load(sample, batch.inputs.sample(static_cast<int>(i)), options_.augment ? &rng : nullptr);
      batch.labels[i] = data_->label(sample);
    }
    return batch;
  }

  const D* data_;
  Options options_;
  std::vector<std::size_t> order_;
  std::size_t position_ = 0;
  int epoch_ = 0;
  std::future<Batch> pending_;
  std::exception_ptr failure_;
};

}  // namespace hcnn
