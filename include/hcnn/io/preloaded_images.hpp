// hcnn/io/preloaded_images.hpp — a set of images decoded once, kept in memory at a small fixed
// size, and served with the per-sample part of the preprocessing.
//
// Training small networks on small images for many epochs spends most of its time decoding
// JPEGs if every epoch decodes them again (a 300x240 Caltech photograph decodes in about a
// millisecond; a 64x64 forward and backward pass of zoo::SmallD takes less). PreloadedImages
// decodes each image once (in parallel), resizes its shorter side to `stored_size` and keeps the
// centre stored_size x stored_size square as 8-bit RGB: 15 KB an image at 72 px, 135 MB for all
// of Caltech-101. load() then crops (centre, or random for training), mirrors and normalises as
// the Preprocess says, with no resize.
#pragma once

#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/shape.hpp"
#include "image.hpp"

namespace hcnn {

struct LabeledImage {
  std::filesystem::path path;
  int label = 0;
};

class PreloadedImages {
 public:
  // Decodes every image (the first failure is thrown, naming its file). `per_sample` gives the
  // crop, augmentation, channel order, mean and scale; its resize fields are ignored, and its
  // crop must fit the stored square. `limits` bound what decoding one image may cost.
  PreloadedImages(std::vector<LabeledImage> images, int stored_size, Preprocess per_sample, ImageLimits limits = {})
      : images_(std::move(images)), stored_size_(stored_size), per_sample_(std::move(per_sample)) {
    if (stored_size <= 0) throw Error("PreloadedImages: the stored size must be positive, got " + std::to_string(stored_size));
    per_sample_.resize_to = 0;
    if (per_sample_.crop > stored_size)
      throw ShapeError("PreloadedImages: a " + std::to_string(per_sample_.crop) + " crop does not fit the stored " +
                       std::to_string(stored_size) + "x" + std::to_string(stored_size) + " images");
    const std::size_t bytes = image_bytes();
    pixels_.resize(images_.size() * bytes);
    Preprocess store{.resize_mode = Preprocess::Resize::shorter_side, .resize_to = stored_size, .crop = stored_size};
    std::exception_ptr failure;
    const long count = static_cast<long>(images_.size());
#pragma omp parallel for schedule(dynamic, 16)
    for (long i = 0; i < count; ++i) {
      try {
        const Image sized = resize_and_crop(load_image(images_[std::size_t(i)].path, limits), store);
        std::copy(sized.rgb.begin(), sized.rgb.end(), pixels_.begin() + static_cast<long>(std::size_t(i) * bytes));
      } catch (...) {
#pragma omp critical(hcnn_preload_failure)
        if (!failure) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
  }

  [[nodiscard]] std::size_t size() const { return images_.size(); }
  [[nodiscard]] Shape shape() const { return per_sample_.shape(); }
  [[nodiscard]] int label(std::size_t i) const { return images_[i].label; }
  [[nodiscard]] const std::filesystem::path& path(std::size_t i) const { return images_[i].path; }
  [[nodiscard]] int stored_size() const { return stored_size_; }
  [[nodiscard]] const Preprocess& preprocessing() const { return per_sample_; }
  [[nodiscard]] Preprocess& preprocessing() { return per_sample_; }

  // The stored square of sample i, in place.
  [[nodiscard]] ImageView stored(std::size_t i) const {
    return {stored_size_, stored_size_, pixels_.data() + i * image_bytes()};
  }

  void load(std::size_t i, float* out, Rng* rng = nullptr) const { crop_into(stored(i), per_sample_, out, rng); }

 private:
  [[nodiscard]] std::size_t image_bytes() const { return std::size_t(stored_size_) * std::size_t(stored_size_) * 3; }

  std::vector<LabeledImage> images_;
  int stored_size_;
  Preprocess per_sample_;
  std::vector<std::uint8_t> pixels_;
};

}  // namespace hcnn
