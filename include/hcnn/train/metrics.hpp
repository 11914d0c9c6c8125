// hcnn/train/metrics.hpp — top-1 / top-5 accuracy and the mean loss of a classifier on a dataset.
//
// evaluate(model, data) runs the model in test mode over the whole dataset (each sample's
// centre view, decoded in the background) and works for anything with forward(Tensor) and
// loss(labels): a Model of a Net, a Combination, an Average, on either backend.
#pragma once

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "../io/dataset.hpp"

namespace hcnn {

struct Accuracy {
  double top1 = 0;  // fractions in [0, 1]
  double top5 = 0;
  double loss = 0;  // mean cross-entropy
  std::size_t count = 0;
};

inline std::ostream& operator<<(std::ostream& os, const Accuracy& a) {
  char line[128];
  std::snprintf(line, sizeof line, "top-1 %.2f %%, top-5 %.2f %%, loss %.4f over %zu images", 100 * a.top1, 100 * a.top5,
                a.loss, a.count);
  return os << line;
}

// Adds a batch's hits to running counts: rank of the label among the n x classes scores.
struct AccuracyCounter {
  std::size_t top1 = 0, top5 = 0, count = 0;
  double loss_sum = 0;

  template <class T>
  void add(const T* scores, int classes, std::span<const int> labels, double batch_loss) {
    for (std::size_t s = 0; s < labels.size(); ++s) {
      const T* row = scores + s * std::size_t(classes);
      const T mine = row[labels[s]];
      // Rank = classes scoring strictly higher (ties count in the label's favour, as Caffe's
      // Accuracy layer does).
      const auto higher = std::count_if(row, row + classes, [&](T v) { return v > mine; });
      top1 += higher < 1;
      top5 += higher < 5;
    }
    count += labels.size();
    loss_sum += batch_loss * double(labels.size());
  }
  [[nodiscard]] Accuracy result() const {
    if (count == 0) return {};
    return {double(top1) / double(count), double(top5) / double(count), loss_sum / double(count), count};
  }

  // The same for a batch's output on any backend (read through the host seam).
  template <class T, class Backend>
  void add(const Tensor<T, Backend>& scores, int classes, std::span<const int> labels, double batch_loss) {
    read_on_host(scores.buffer(), [&](std::span<const T> values) { add(values.data(), classes, labels, batch_loss); });
  }
};

// A loader's batch (host floats) as a model of element type T on `Backend` reads it: the batch
// itself for a float CPU model; else converted (BF16 storage) and uploaded into `staging`.
template <class T, class Backend>
const Tensor<T, Backend>& on_backend(const Tensor<float, Cpu>& batch, Tensor<T, Backend>& staging) {
  if constexpr (std::same_as<Backend, Cpu> && std::same_as<T, float>) {
    return batch;
  } else if constexpr (std::same_as<T, float>) {  // a device: one upload, no host copy
    staging.resize(batch.batch(), batch.shape());
    staging.buffer().copy_from_host(batch.data(), batch.size());
    return staging;
  } else {
    staging.resize(batch.batch(), batch.shape());
    write_on_host(staging.buffer(),
                  [&](std::span<T> values) { std::copy(batch.data(), batch.data() + batch.size(), values.begin()); });
    return staging;
  }
}

template <class ModelT, Dataset D>
Accuracy evaluate(ModelT& model, const D& data, int batch_size = 64) {
  if (data.shape() != ModelT::input_shape)
    throw ShapeError("evaluate: the dataset gives " + to_string(data.shape()) + " samples, the model expects " +
                     to_string(ModelT::input_shape));
  BatchLoader<D> loader(data, {.batch_size = batch_size});
  AccuracyCounter counter;
  Tensor<typename ModelT::value_type, typename ModelT::backend> staging;
  for (Batch batch; loader.next(batch);) {
    const auto& p = model.forward(on_backend(batch.inputs, staging), Mode::test);
    counter.add(p, ModelT::output_shape.c, batch.labels, model.loss(batch.labels));
  }
  return counter.result();
}

}  // namespace hcnn
