// hcnn_classify — classifies images with the published Caffe models (CaffeNet, VGG-16/19) or
// with networks hcnn trained (a Net, a Combination or an Average, from its checkpoint), one or
// two of them; with two it also reports their average, the paper's [D,VD]+avg.
//
//   hcnn_classify --model bvlc_reference_caffenet.caffemodel \
//                 [--model VGG_ILSVRC_19_layers.caffemodel] [--labels synset_words.txt] \
//                 [--mean B,G,R] IMAGE...
//   hcnn_classify --checkpoint joint.ckpt IMAGE...
#include <hcnn/hcnn.hpp>

#include "caltech101/models.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>
#include <tuple>
#include <string>
#include <vector>

namespace {

using namespace hcnn;

constexpr int imagenet_classes = 1000;

const char* const usage = R"(usage: hcnn_classify --model FILE.caffemodel [--model FILE2.caffemodel]
                     [--labels FILE] [--mean B,G,R] IMAGE...
       hcnn_classify --checkpoint FILE.ckpt [--labels FILE] IMAGE...

Prints the five most probable classes of each IMAGE (JPEG, PNG, BMP) under a published
Caffe ImageNet model, as the model was trained to see images: resized to 256x256, the
centre 227x227 (CaffeNet) or 224x224 (VGG) crop, BGR, minus the ImageNet mean.

  --model FILE    a .caffemodel of CaffeNet (bvlc_reference_caffenet), VGG-16 or VGG-19
                  (VGG_ILSVRC_16/19_layers); the network is recognised from the file's
                  layer names. Give two models to also print their averaged prediction
                  ([D,VD]+avg in the HCNN paper).
  --checkpoint FILE  a network hcnn trained, from the checkpoint its Trainer (or
                  save_checkpoint) wrote: a Net, a Combination or an Average of the
                  small experiment networks (hcnn_classify --list shows which). The
                  checkpoint's metadata give the preprocessing ("preprocess") and the
                  class names ("classes").
  --labels FILE   class names, one per line in class order (e.g. synset_words.txt);
                  without it classes are printed as numbers (or by the names a
                  checkpoint holds)
  --list          the architectures --checkpoint knows
  --mean B,G,R    the per-channel mean to subtract (default: each model's ImageNet mean,
                  104.007,116.669,122.679 for CaffeNet and 103.939,116.779,123.68 for VGG)
  --max-image-pixels N  refuse images of more than N pixels (default 67108864, 8192x8192)
  --max-image-mb N      refuse images whose decoding would take more than N MiB of memory
                  (default 1024); both are checked against the file's header before decoding
  --help          this text

Every error names the file involved; the exit status is 0 on success, 1 on an error in a
file, 2 on a wrong command line.
)";

// One loaded network, whichever it is, behind a uniform call.
struct Classifier {
  std::string name;
  int classes = imagenet_classes;
  std::vector<std::string> labels;  // names, if the source gives them
  std::function<std::vector<float>(const Image&)> run;
};

// Runs a model (a Net, Combination or Average) on one preprocessed image.
template <class M>
std::function<std::vector<float>(const Image&)> runner(std::shared_ptr<M> model, const Preprocess& p) {
  if (p.shape() != M::input_shape)
    throw Error("the preprocessing gives " + to_string(p.shape()) + " inputs, the network expects " +
                to_string(M::input_shape));
  return [model, p](const Image& image) {
    Tensor<float> x(1, M::input_shape);
    preprocess_into(image, p, x.data());
    const auto& out = model->forward(x);
    return std::vector<float>(out.data(), out.data() + out.size());
  };
}

template <class N>
Classifier make_classifier(const CaffeModel& file, std::string name, const Preprocess& preprocess) {
  auto model = std::make_shared<Model<N>>(0);
  import_caffemodel(*model, file);
  return {std::move(name), imagenet_classes, {}, runner(model, preprocess)};
}

// The networks --checkpoint rebuilds, recognised by the architecture a checkpoint records: the
// small networks, [D,VD]+2CL, [D,D']+2CL and their averages for 50 target classes (a
// Combination's architecture does not depend on its bases' source classes), and what
// hcnn_caltech101 saves (examples/caltech101/models.hpp: its bases and target-task models).
template <class N>
struct Known {
  using net = N;
  const char* name;
};
constexpr int target_classes = 50;
using SmallD = zoo::SmallD<target_classes>;
using SmallVDBN = zoo::SmallVDBN<target_classes>;
const auto known_checkpoints = std::make_tuple(
    Known<SmallD>{"zoo::SmallD<50>"}, Known<SmallVDBN>{"zoo::SmallVDBN<50>"},
    Known<zoo::SmallVD<target_classes>>{"zoo::SmallVD<50>"},
    Known<Combination<SmallD, SmallVDBN, FC<512>, Softmax<target_classes>>>{"[D,VD]+2CL (SmallD, SmallVDBN, fc 512)"},
    Known<Combination<SmallD, SmallD, FC<512>, Softmax<target_classes>>>{"[D,D']+2CL (SmallD, SmallD, fc 512)"},
    Known<Average<SmallD, SmallVDBN>>{"[D,VD]+avg (SmallD, SmallVDBN)"},
    Known<Average<SmallD, SmallD>>{"[D,D']+avg (SmallD, SmallD)"},
    Known<caltech101::D>{"hcnn_caltech101 base D (SmallD<51>)"},
    Known<caltech101::VD>{"hcnn_caltech101 base VD (SmallVDBN<51>)"},
    Known<caltech101::TargetJoint<caltech101::D, caltech101::VD>>{"hcnn_caltech101 [D,VD]+2CL"},
    Known<caltech101::TargetJoint<caltech101::D, caltech101::D>>{"hcnn_caltech101 [D,D']+2CL"},
    Known<caltech101::TargetSingle<caltech101::D>>{"hcnn_caltech101 D (fc7 and the softmax fine-tuned)"},
    Known<caltech101::TargetSingle<caltech101::VD>>{"hcnn_caltech101 VD (fc15 and the softmax fine-tuned)"});

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

Classifier load_checkpoint_classifier(const std::string& path) {
  const CheckpointInfo info = read_checkpoint_info(path);
  if (info.architecture.empty()) throw IoError(path, "is a version 1 checkpoint, which does not record its architecture");
  const auto preprocess = info.metadata.find("preprocess");
  if (preprocess == info.metadata.end())
    throw IoError(path, "has no 'preprocess' metadata: save it with TrainOptions::checkpoint_metadata"
                        " (\"preprocess\" = to_string(Preprocess))");
  std::optional<Classifier> found;
  std::apply([&](const auto&... known) {
    auto try_one = [&](const auto& k) {
      using N = typename std::remove_cvref_t<decltype(k)>::net;
      if (found || architecture<N>() != info.architecture) return;
      auto model = std::make_shared<Model<N>>(0);
      load_checkpoint(path, *model);
      Classifier c{k.name, N::output_shape.c, {}, runner(model, parse_preprocess(preprocess->second))};
      if (const auto classes = info.metadata.find("classes"); classes != info.metadata.end()) {
        c.labels = split_lines(classes->second);
        if (c.labels.size() != std::size_t(c.classes))
          throw IoError(path, "names " + std::to_string(c.labels.size()) + " classes in its metadata, the network has " +
                                  std::to_string(c.classes));
      }
      found = std::move(c);
    };
    (try_one(known), ...);
  }, known_checkpoints);
  if (!found)
    throw IoError(path, "holds a network hcnn_classify does not know (hcnn_classify --list shows which it does): " +
                            info.architecture.substr(0, 160) + (info.architecture.size() > 160 ? " ..." : ""));
  return std::move(*found);
}

Classifier load_classifier(const std::string& path, const std::optional<std::array<float, 3>>& mean) {
  const CaffeModel file(path);
  const CaffeLayer* fc8 = file.find("fc8");
  if (fc8 == nullptr || fc8->blobs.empty())
    throw IoError(path, "has no fc8 layer: not a CaffeNet or VGG ImageNet model");
  const auto out_shape = fc8->blobs[0].legacy_shape();
  if (out_shape[2] != imagenet_classes)
    throw IoError(path, "fc8 has " + std::to_string(out_shape[2]) + " outputs; hcnn_classify runs the 1000-class "
                        "ImageNet models");
  auto with_mean = [&](Preprocess p) {
    if (mean) p.mean = *mean;
    return p;
  };
  if (file.find("conv5_4")) return make_classifier<zoo::VGG19<>>(file, "VGG-19", with_mean(preprocess::vgg_imagenet()));
  if (file.find("conv5_3")) return make_classifier<zoo::VGG16<>>(file, "VGG-16", with_mean(preprocess::vgg_imagenet()));
  if (file.find("conv5") && file.find("conv1"))
    return make_classifier<zoo::CaffeNet<>>(file, "CaffeNet", with_mean(preprocess::caffe_imagenet()));
  throw IoError(path, "is neither CaffeNet (conv1 ... conv5, fc8) nor VGG-16/19 (conv1_1 ... conv5_3/conv5_4, fc8)");
}

std::vector<std::string> read_labels(const std::string& path, int classes) {
  const io::MappedFile file(path);  // refuses a folder or a FIFO (without blocking on it), naming it
  const auto bytes = file.bytes();
  const std::vector<std::string> labels =
      split_lines(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  if (labels.size() != std::size_t(classes))
    throw IoError(path, "has " + std::to_string(labels.size()) + " lines, expected one per class (" +
                            std::to_string(classes) + ")");
  return labels;
}

std::array<float, 3> parse_mean(const std::string& text) {
  std::array<float, 3> mean{};
  char* end = nullptr;
  const char* p = text.c_str();
  for (int c = 0; c < 3; ++c) {
    mean[c] = std::strtof(p, &end);
    if (end == p || (c < 2 && *end != ',') || (c == 2 && *end != '\0') || !std::isfinite(mean[c]))
      throw std::invalid_argument("--mean expects three numbers B,G,R, got '" + text + "'");
    p = end + 1;
  }
  return mean;
}

std::int64_t parse_positive(const std::string& option, const std::string& text) {
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0' || value <= 0 || value > (std::int64_t{1} << 40))
    throw std::invalid_argument(option + " expects a positive whole number, got '" + text + "'");
  return value;
}

void print_top5(const std::string& who, const std::vector<float>& p, const std::vector<std::string>& labels) {
  std::vector<int> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 5, order.end(), [&](int a, int b) { return p[a] > p[b]; });
  std::printf("  %s\n", who.c_str());
  for (int k = 0; k < 5; ++k) {
    const int c = order[k];
    std::printf("    %d. %.4f  %s\n", k + 1, p[c], labels.empty() ? std::to_string(c).c_str() : labels[c].c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> model_paths, checkpoint_paths, images;
  std::string labels_path;
  std::optional<std::array<float, 3>> mean;
  ImageLimits limits;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--help" || arg == "-h") {
        std::fputs(usage, stdout);
        return 0;
      } else if (arg == "--list") {
        std::apply([](const auto&... known) { (std::printf("%s\n", known.name), ...); }, known_checkpoints);
        return 0;
      } else if (arg == "--model") {
        model_paths.push_back(value());
      } else if (arg == "--checkpoint") {
        checkpoint_paths.push_back(value());
      } else if (arg == "--labels") {
        labels_path = value();
      } else if (arg == "--mean") {
        mean = parse_mean(value());
      } else if (arg == "--max-image-pixels") {
        limits.max_pixels = parse_positive(arg, value());
      } else if (arg == "--max-image-mb") {
        limits.max_bytes = parse_positive(arg, value()) << 20;
      } else if (arg.starts_with("--")) {
        throw std::invalid_argument("unknown option " + arg);
      } else {
        images.push_back(arg);
      }
    }
    const std::size_t networks = model_paths.size() + checkpoint_paths.size();
    if (networks == 0 || networks > 2) throw std::invalid_argument("give one or two --model or --checkpoint files");
    if (images.empty()) throw std::invalid_argument("give at least one image");
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "hcnn_classify: %s\n\n%s", e.what(), usage);
    return 2;
  }

  try {
    std::vector<Classifier> classifiers;
    for (const auto& path : model_paths) classifiers.push_back(load_classifier(path, mean));
    for (const auto& path : checkpoint_paths) classifiers.push_back(load_checkpoint_classifier(path));
    const int classes = classifiers.front().classes;
    if (classifiers.back().classes != classes)
      throw Error(classifiers.front().name + " has " + std::to_string(classes) + " classes and " + classifiers.back().name +
                  " " + std::to_string(classifiers.back().classes) + ": they cannot be averaged");
    const std::vector<std::string> labels =
        labels_path.empty() ? classifiers.front().labels : read_labels(labels_path, classes);
    int failures = 0;
    for (const auto& path : images) {
      try {
        const Image image = load_image(path, limits);
        std::vector<float> average(std::size_t(classes), 0.0f);
        std::vector<std::vector<float>> outputs;
        for (const auto& c : classifiers) {
          outputs.push_back(c.run(image));
          if (const auto at = first_non_finite(std::span<const float>(outputs.back())))
            throw NumericError(path + ": " + c.name + " gives " + non_finite_name(outputs.back()[*at]) +
                               " probabilities for this image: a layer's output overflowed (its parameters are finite)");
        }
        std::printf("%s\n", path.c_str());
        for (std::size_t n = 0; n < classifiers.size(); ++n) {
          const auto& c = classifiers[n];
          const auto& p = outputs[n];
          print_top5(c.name, p, labels);
          for (int k = 0; k < classes; ++k) average[k] += p[k] / float(classifiers.size());
        }
        if (classifiers.size() == 2)
          print_top5("average of " + classifiers[0].name + " and " + classifiers[1].name, average, labels);
      } catch (const Error& e) {  // one bad image (or one that overflows a layer) does not stop the others
        std::fflush(stdout);
        std::fprintf(stderr, "hcnn_classify: %s\n", e.what());
        ++failures;
      }
    }
    return failures == 0 ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "hcnn_classify: %s\n", e.what());
    return 1;
  }
}
