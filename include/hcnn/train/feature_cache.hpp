// hcnn/train/feature_cache.hpp — frozen bases cost nothing twice: their features, computed
// once per image and view.
//
// When a Combination's bases are frozen, each training step would recompute the same base
// forward passes. FeatureCache runs the bases once over every (image, view) pair — view v of
// sample i being the augmentation that BatchLoader gives it with `views` = V, so the cache
// holds exactly what recomputing would see — and stores each base's features before its
// trailing dropout, which still drops per step (Model::forward_from_features).
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <vector>

#include "../combination.hpp"
#include "../io/dataset.hpp"
#include "progress.hpp"

namespace hcnn {

template <class ModelT>
class FeatureCache {
  static_assert(is_combination<typename ModelT::net>, "FeatureCache: caches the bases of a Combination");

 public:
  using T = typename ModelT::value_type;
  static constexpr std::size_t base_count = ModelT::base_count;

  // `views` fixed views per image (1 without augmentation); `seed` as the loader's.
  template <Dataset D>
  FeatureCache(ModelT& model, const D& data, int views, bool augment, std::uint64_t seed, int batch_size = 64,
               Progress* progress = nullptr)
      : views_(augment ? views : 1) {
    if (views_ <= 0) throw Error("FeatureCache: needs at least one view per image, got " + std::to_string(views));
    for_each_size([&]<std::size_t I>(std::size_t size) { store_[I].resize(data.size() * std::size_t(views_) * size); });
    // Epochs 1..V of an unshuffled loader with V views give every sample each view once.
    BatchLoader<D> loader(data, {.batch_size = batch_size, .augment = augment, .seed = seed, .views = views_});
    if (progress) progress->start("caching features", data.size() * std::size_t(views_));
    std::size_t done = 0;
    for (int epoch = 1; epoch <= views_; ++epoch) {
      std::size_t sample = 0;
      for (Batch batch; loader.next(batch);) {
        const int n = batch.inputs.batch();
        model.forward_bases(batch.inputs.data(), n, Mode::test);
        for_each_size([&]<std::size_t I>(std::size_t size) {
          const T* f = model.template base_features<I>();
          for (int s = 0; s < n; ++s) {
            const std::size_t at = sample + std::size_t(s);
            const auto view = view_of(at, std::uint64_t(epoch), views_);
            std::copy(f + s * size, f + (s + 1) * size, store_[I].data() + offset<I>(at, view));
          }
        });
        sample += std::size_t(n);
        done += std::size_t(n);
        if (progress) progress->update(done, "");
      }
    }
    if (progress) progress->finish();
  }

  // Base I's features of view `view` of `sample`.
  template <std::size_t I>
  [[nodiscard]] const T* features(std::size_t sample, std::uint64_t view) const {
    return store_[I].data() + offset<I>(sample, view);
  }

  // Runs the model's training forward pass on the cached features of these samples in the
  // view each gets in `epoch`.
  const Tensor<T>& forward(ModelT& model, std::span<const std::size_t> samples, std::uint64_t epoch, Mode mode) {
    const int n = static_cast<int>(samples.size());
    std::array<const T*, base_count> pointers{};
    for_each_size([&]<std::size_t I>(std::size_t size) {
      staging_[I].resize(samples.size() * size);
      for (std::size_t s = 0; s < samples.size(); ++s) {
        const T* f = features<I>(samples[s], view_of(samples[s], epoch, views_));
        std::copy(f, f + size, staging_[I].data() + s * size);
      }
      pointers[I] = staging_[I].data();
    });
    return model.forward_from_features(std::span<const T* const, base_count>(pointers), n, mode);
  }

 private:
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
  std::array<std::vector<T>, base_count> store_;
  std::array<std::vector<T>, base_count> staging_;
};

}  // namespace hcnn
