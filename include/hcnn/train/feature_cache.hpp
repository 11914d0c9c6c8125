// hcnn/train/feature_cache.hpp — frozen bases cost nothing twice: their features, computed
// once per image and view.
//
// When a Combination's bases are frozen, each training step would recompute the same base
// forward passes. FeatureCache runs the bases once over every (image, view) pair — view v of
// sample i being the augmentation that BatchLoader gives it with `views` = V, so the cache
// holds exactly what recomputing would see — and stores each base's features before its
// trailing dropout, which still drops per step (Model::forward_from_features). Given a
// FeatureBank, each base's features are looked up there first and computed only if no earlier
// cache (of any Combination holding the same base) did.
//
// evaluate(model, data, bank) and for_each_cached_batch() run a Combination in test mode from
// the bank's features of each sample's centre view: an experiment that evaluates many
// combinations of the same bases computes each base's test features once. The Trainer keeps a
// centre_view_cache of its test set for a whole fit(), so evaluating after every epoch runs
// the frozen bases over the test set once.
//
// The features live in host memory on either backend: a FeatureBank is shared by models of
// both backends, and the host holds far more than a device. A Cuda model's batches are
// gathered on the host and uploaded per batch (a few MB: far less than the bases' forward
// passes they replace); its bases' features are downloaded once, while caching.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../architecture.hpp"
#include "../combination.hpp"
#include "../io/dataset.hpp"
#include "feature_bank.hpp"
#include "metrics.hpp"
#include "progress.hpp"

namespace hcnn {

template <class ModelT>
class FeatureCache {
  static_assert(is_combination<typename ModelT::net>, "FeatureCache: caches the bases of a Combination");

 public:
  using T = typename ModelT::value_type;
  using Backend = typename ModelT::backend;
  static constexpr std::size_t base_count = ModelT::base_count;

  // `views` fixed views per image (1 without augmentation); `seed` as the loader's.
  template <Dataset D>
  FeatureCache(ModelT& model, const D& data, int views, bool augment, std::uint64_t seed, int batch_size = 64,
               Progress* progress = nullptr, FeatureBank<T>* bank = nullptr)
      : views_(augment ? views : 1) {
    if (views_ <= 0) throw Error("FeatureCache: needs at least one view per image, got " + std::to_string(views));
    std::array<std::string, base_count> keys;
    std::array<std::shared_ptr<std::vector<T>>, base_count> computing;
    if (bank != nullptr) {
      const std::string data_key = std::to_string(dataset_fingerprint(data)) + " views " + std::to_string(views_) +
                                   " augment " + std::to_string(int(augment)) + " seed " + std::to_string(seed) +
                                   " from " + to_string(ModelT::input_shape);
      for_each_size([&]<std::size_t I>(std::size_t) {
        keys[I] = architecture<typename ModelT::net::template base<I>>() + " # " +
                  std::to_string(parameter_fingerprint(model.template base<I>())) + " # " + data_key;
        store_[I] = bank->find(keys[I]);
      });
    }
    bool any = false;
    for_each_size([&]<std::size_t I>(std::size_t size) {
      if (store_[I]) return;
      computing[I] = std::make_shared<std::vector<T>>(data.size() * std::size_t(views_) * size);
      any = true;
    });
    if (any) compute(model, data, augment, seed, batch_size, progress, computing);
    for_each_size([&]<std::size_t I>(std::size_t) {
      if (!computing[I]) return;
      store_[I] = computing[I];
      if (bank != nullptr) bank->insert(keys[I], store_[I]);
    });
  }

  // Base I's features of view `view` of `sample`.
  template <std::size_t I>
  [[nodiscard]] const T* features(std::size_t sample, std::uint64_t view) const {
    return store_[I]->data() + offset<I>(sample, view);
  }

  // Runs the model's forward pass on the cached features of these samples in the view each
  // gets in `epoch`.
  const Tensor<T, Backend>& forward(ModelT& model, std::span<const std::size_t> samples, std::uint64_t epoch,
                                    Mode mode) {
    const int n = static_cast<int>(samples.size());
    std::array<const T*, base_count> pointers{};
    for_each_size([&]<std::size_t I>(std::size_t size) {
      staging_[I].resize(samples.size() * size);
      for (std::size_t s = 0; s < samples.size(); ++s) {
        const T* f = features<I>(samples[s], view_of(samples[s], epoch, views_));
        std::copy(f, f + size, staging_[I].data() + s * size);
      }
      if constexpr (std::same_as<Backend, Cpu>) {
        pointers[I] = staging_[I].data();
      } else {
        uploaded_[I].copy_from_host(staging_[I].data(), staging_[I].size());
        pointers[I] = uploaded_[I].data();
      }
    });
    return model.forward_from_features(std::span<const T* const, base_count>(pointers), n, mode);
  }

 private:
  // One pass over every (sample, view): epochs 1..V of an unshuffled loader with V views give
  // every sample each view once. Only the bases in `into` run.
  template <Dataset D>
  void compute(ModelT& model, const D& data, bool augment, std::uint64_t seed, int batch_size, Progress* progress,
               std::array<std::shared_ptr<std::vector<T>>, base_count>& into) {
    BatchLoader<D> loader(data, {.batch_size = batch_size, .augment = augment, .seed = seed, .views = views_});
    if (progress) progress->start("caching features", data.size() * std::size_t(views_));
    std::size_t done = 0;
    for (int epoch = 1; epoch <= views_; ++epoch) {
      std::size_t sample = 0;
      for (Batch batch; loader.next(batch);) {
        const int n = batch.inputs.batch();
        const T* inputs = on_backend(batch.inputs, input_).data();
        for_each_size([&]<std::size_t I>(std::size_t size) {
          if (!into[I]) return;
          model.template forward_base<I>(inputs, n, Mode::test);
          const T* f = base_features_on_host<I>(model, std::size_t(n) * size);
          for (int s = 0; s < n; ++s) {
            const std::size_t at = sample + std::size_t(s);
            const auto view = view_of(at, std::uint64_t(epoch), views_);
            std::copy(f + s * size, f + (s + 1) * size, into[I]->data() + offset<I>(at, view));
          }
        });
        sample += std::size_t(n);
        done += std::size_t(n);
        if (progress) progress->update(done, "");
      }
    }
    if (progress) progress->finish();
  }

  // Base I's features of the last batch (count values), in host memory.
  template <std::size_t I>
  const T* base_features_on_host(const ModelT& model, std::size_t count) {
    if constexpr (std::same_as<Backend, Cpu>) {
      return model.template base_features<I>();
    } else {
      downloaded_.resize(count);
      copy_to_host(Backend{}, model.template base_features<I>(), count, downloaded_.data());
      return downloaded_.data();
    }
  }

  template <class F>
  static void for_each_size(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f.template operator()<I>(ModelT::template feature_size<I>), ...);
    }(std::make_index_sequence<base_count>{});
  }
  template <std::size_t I>
  [[nodiscard]] std::size_t offset(std::size_t sample, std::uint64_t view) const {
    return (sample * std::size_t(views_) + std::size_t(view)) * ModelT::template feature_size<I>;
  }

  int views_;
  std::array<std::shared_ptr<const std::vector<T>>, base_count> store_;
  std::array<std::vector<T>, base_count> staging_;  // a batch's features, gathered
  // On a device: those features uploaded, a batch of images uploaded, a batch's features
  // downloaded while caching.
  std::array<Buffer<T, Backend>, base_count> uploaded_;
  Tensor<T, Backend> input_;
  std::vector<T> downloaded_;
};

// The features of each sample's centre view (what evaluation sees), looked up in `bank` first
// if one is given.
template <class ModelT, Dataset D>
  requires is_combination<typename ModelT::net>
FeatureCache<ModelT> centre_view_cache(ModelT& model, const D& data, FeatureBank<typename ModelT::value_type>* bank,
                                       int batch_size = 64) {
  if (data.shape() != ModelT::input_shape)
    throw ShapeError("evaluate: the dataset gives " + to_string(data.shape()) + " samples, the model expects " +
                     to_string(ModelT::input_shape));
  return FeatureCache<ModelT>(model, data, 1, false, 0, batch_size, nullptr, bank);
}

// Runs a Combination in test mode over `data` in order, from `cache` (a centre_view_cache of
// `data` for the model's current bases), and calls f(first_sample, labels, output) after each
// batch; the model's activations (model.head().activation<k>()) are those of the batch.
template <class ModelT, Dataset D, class F>
  requires is_combination<typename ModelT::net>
void for_each_cached_batch(ModelT& model, const D& data, FeatureCache<ModelT>& cache, F&& f, int batch_size = 64) {
  std::vector<std::size_t> samples;
  std::vector<int> labels;
  for (std::size_t at = 0; at < data.size(); at += std::size_t(batch_size)) {
    samples.resize(std::min(data.size() - at, std::size_t(batch_size)));
    std::iota(samples.begin(), samples.end(), at);
    labels.clear();
    for (std::size_t s : samples) labels.push_back(data.label(s));
    const auto& output = cache.forward(model, samples, 1, Mode::test);
    f(at, std::span<const int>(labels), output);
  }
}

// The same from the bank's features of each sample's centre view.
template <class ModelT, Dataset D, class F>
  requires is_combination<typename ModelT::net>
void for_each_cached_batch(ModelT& model, const D& data, FeatureBank<typename ModelT::value_type>& bank, F&& f,
                           int batch_size = 64) {
  auto cache = centre_view_cache(model, data, &bank, batch_size);
  for_each_cached_batch(model, data, cache, std::forward<F>(f), batch_size);
}

// evaluate() from cached features: the same figures as evaluate(model, data). From a
// centre_view_cache of `data` (built once, evaluated after every epoch of head training) ...
template <class ModelT, Dataset D>
  requires is_combination<typename ModelT::net>
Accuracy evaluate(ModelT& model, const D& data, FeatureCache<ModelT>& cache, int batch_size = 64) {
  AccuracyCounter counter;
  for_each_cached_batch(
      model, data, cache,
      [&](std::size_t, std::span<const int> labels, const auto& output) {
        counter.add(output, ModelT::output_shape.c, labels, model.loss(labels));
      },
      batch_size);
  return counter.result();
}

// ... or from a bank, each base's test features computed once per bank.
template <class ModelT, Dataset D>
  requires is_combination<typename ModelT::net>
Accuracy evaluate(ModelT& model, const D& data, FeatureBank<typename ModelT::value_type>& bank, int batch_size = 64) {
  auto cache = centre_view_cache(model, data, &bank, batch_size);
  return evaluate(model, data, cache, batch_size);
}

// The class probabilities of every sample (data.size() x classes, row-major), from cached
// features: what averaging several transferred models needs.
template <class ModelT, Dataset D>
  requires is_combination<typename ModelT::net>
std::vector<typename ModelT::value_type> predict(ModelT& model, const D& data,
                                                 FeatureBank<typename ModelT::value_type>& bank, int batch_size = 64) {
  constexpr std::size_t classes = std::size_t(ModelT::output_shape.c);
  std::vector<typename ModelT::value_type> all(data.size() * classes);
  for_each_cached_batch(
      model, data, bank,
      [&](std::size_t first, std::span<const int> labels, const auto& output) {
        read_on_host(output.buffer(), [&](std::span<const typename ModelT::value_type> p) {
          std::copy(p.begin(), p.begin() + long(labels.size() * classes), all.begin() + long(first * classes));
        });
      },
      batch_size);
  return all;
}

}  // namespace hcnn
