// hcnn/train/feature_bank.hpp — frozen bases' features, shared between every Combination that
// holds the same base.
//
// An experiment trains many Combinations on the same few bases: [D,D']+2CL and [D,VD]+2CL
// share D, the fc-alpha widths and seeds share both bases. A FeatureCache alone computes its
// bases' features again for each model; given a FeatureBank it looks each base up first and
// computes only what no earlier cache did. An entry is keyed by what determines the features:
// the kept base's architecture, the shared input it is cropped from, a fingerprint of the
// base's blobs (so a base trained further, or another seed, never reads stale features), a
// fingerprint of the dataset (its size, its labels and its first and last samples) and the
// views. Entries live as long as the bank (or a cache still using them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "../io/dataset.hpp"

namespace hcnn {

// FNV-1a, 64 bits: a fingerprint, not a checksum against tampering.
class Fingerprint {
 public:
  void add(const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < bytes; ++i) hash_ = (hash_ ^ p[i]) * 0x100000001b3ull;
  }
  template <class T>
  void add_values(std::span<const T> values) {
    add(values.data(), values.size_bytes());
  }
  void add(const std::string& text) { add(text.data(), text.size() + 1); }
  [[nodiscard]] std::uint64_t value() const { return hash_; }

 private:
  std::uint64_t hash_ = 0xcbf29ce484222325ull;
};

// Every blob's name and values.
template <class ModelT>
std::uint64_t parameter_fingerprint(ModelT& model) {
  Fingerprint f;
  for (const auto& named : model.parameters()) {
    f.add(named.layer + "." + named.param->name);
    read_on_host(named.param->value, [&](auto values) { f.add(values.data(), values.size_bytes()); });
  }
  return f.value();
}

template <Dataset D>
std::uint64_t dataset_fingerprint(const D& data) {
  Fingerprint f;
  const std::size_t n = data.size();
  f.add(&n, sizeof n);
  for (std::size_t i = 0; i < n; ++i) {
    const int label = data.label(i);
    f.add(&label, sizeof label);
  }
  if (n > 0) {
    std::vector<float> sample(static_cast<std::size_t>(data.shape().size()));
    for (std::size_t i : {std::size_t{0}, n - 1}) {
      data.load(i, sample.data(), nullptr);
      f.add_values(std::span<const float>(sample));
    }
  }
  return f.value();
}

template <class T>
class FeatureBank {
 public:
  using Store = std::vector<T>;

  [[nodiscard]] std::shared_ptr<const Store> find(const std::string& key) const {
    const auto at = stores_.find(key);
    return at == stores_.end() ? nullptr : at->second;
  }
  void insert(const std::string& key, std::shared_ptr<const Store> store) { stores_[key] = std::move(store); }

  [[nodiscard]] std::size_t entries() const { return stores_.size(); }
  [[nodiscard]] std::size_t bytes() const {
    std::size_t total = 0;
    for (const auto& [key, store] : stores_) total += store->size() * sizeof(T);
    return total;
  }
  void clear() { stores_.clear(); }

 private:
  std::map<std::string, std::shared_ptr<const Store>> stores_;
};

}  // namespace hcnn
