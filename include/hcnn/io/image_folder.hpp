// hcnn/io/image_folder.hpp — a dataset of image files, one folder per class.
//
// root/<class>/<image>: classes are the sub-folders in sorted order (label = position), images
// are the .jpg/.jpeg/.png/.bmp files in them (any case), in sorted order, so a dataset and its
// seeded splits are the same on every machine. Images are decoded when a sample is loaded.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "dataset.hpp"
#include "image.hpp"

namespace hcnn {

class ImageFolder {
 public:
  // `limits` bound what decoding one image may cost (raise them for very large photographs).
  ImageFolder(const std::filesystem::path& root, Preprocess preprocess, ImageLimits limits = {})
      : root_(root), preprocess_(std::move(preprocess)), limits_(limits) {
    try {
      scan(root);
    } catch (const std::filesystem::filesystem_error& e) {  // e.g. a symlink loop: an IoError as promised
      throw IoError(e.path1().empty() ? root : e.path1(), e.code().message());
    }
  }

  [[nodiscard]] std::size_t size() const { return samples_.size(); }
  [[nodiscard]] Shape shape() const { return preprocess_.shape(); }
  [[nodiscard]] int label(std::size_t i) const { return samples_[i].label; }
  [[nodiscard]] const std::filesystem::path& path(std::size_t i) const { return samples_[i].path; }
  [[nodiscard]] const std::vector<std::string>& classes() const { return classes_; }
  [[nodiscard]] const std::filesystem::path& root() const { return root_; }
  [[nodiscard]] Preprocess& preprocessing() { return preprocess_; }
  [[nodiscard]] const Preprocess& preprocessing() const { return preprocess_; }

  // Decodes and preprocesses sample i into out (shape() floats); rng drives augmentation.
  void load(std::size_t i, float* out, Rng* rng = nullptr) const {
    preprocess_into(load_image(samples_[i].path, limits_), preprocess_, out, rng);
  }

  // The usual Caltech-101 protocol: `train_per_class` images of each class (chosen by a seeded
  // shuffle) for training, the rest for testing. A class with too few images keeps at least
  // one test image and gives the rest to training.
  [[nodiscard]] std::pair<Subset<ImageFolder>, Subset<ImageFolder>> split_per_class(int train_per_class,
                                                                                    std::uint64_t seed = 0) const {
    return hcnn::split_per_class(*this, train_per_class, seed);
  }

 private:
  void scan(const std::filesystem::path& root) {
    std::error_code error;
    if (!std::filesystem::exists(root, error)) throw IoError(root, "no such folder");
    if (!std::filesystem::is_directory(root, error)) throw IoError(root, "not a folder (expected one folder per class)");
    std::vector<std::filesystem::path> class_dirs;
    for (const auto& entry : std::filesystem::directory_iterator(root))
      if (entry.is_directory()) class_dirs.push_back(entry.path());
    std::sort(class_dirs.begin(), class_dirs.end());
    if (class_dirs.empty()) throw IoError(root, "has no class folders");
    for (const auto& dir : class_dirs) {
      std::vector<std::filesystem::path> images;
      for (const auto& entry : std::filesystem::directory_iterator(dir))
        if (entry.is_regular_file() && is_image_name(entry.path())) images.push_back(entry.path());
      if (images.empty()) throw IoError(dir, "class folder holds no images (.jpg, .jpeg, .png, .bmp)");
      std::sort(images.begin(), images.end());
      const int label = static_cast<int>(classes_.size());
      classes_.push_back(dir.filename().string());
      for (auto& path : images) samples_.push_back({std::move(path), label});
    }
  }

  static bool is_image_name(const std::filesystem::path& path) {
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
  }

  struct Sample {
    std::filesystem::path path;
    int label;
  };
  std::filesystem::path root_;
  Preprocess preprocess_;
  ImageLimits limits_;
  std::vector<std::string> classes_;
  std::vector<Sample> samples_;
};

}  // namespace hcnn
