// Writes checkpoints of networks hcnn_classify knows (and one it does not), with seeded random
// weights and the metadata a Trainer would store, for the end-to-end tests of --checkpoint.
//   save_random_checkpoint combination|average|unknown|no_preprocess OUTPUT.ckpt
#include <hcnn/hcnn.hpp>

#include <cstdio>
#include <string>

using namespace hcnn;

namespace {

CheckpointInfo metadata() {
  Preprocess p{.resize_mode = Preprocess::Resize::shorter_side, .resize_to = 72, .crop = 64, .bgr = false,
               .mean = {120, 115, 100}, .scale = 1.0f / 64};
  std::string classes;
  for (int c = 0; c < 50; ++c) classes += "class" + std::to_string(c) + (c < 49 ? "\n" : "");
  return {.metadata = {{"preprocess", to_string(p)}, {"classes", classes}}};
}

template <class N>
void save(const char* path, CheckpointInfo info) {
  Model<N> model(7);
  save_checkpoint(path, model, nullptr, info);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string kind = argc == 3 ? argv[1] : "";
  using D = zoo::SmallD<51>;  // source-task bases: the combination does not keep their classifier
  using VD = zoo::SmallVDBN<51>;
  if (kind == "combination") save<Combination<D, VD, FC<512>, Softmax<50>>>(argv[2], metadata());
  else if (kind == "average") save<Average<zoo::SmallD<50>, zoo::SmallVDBN<50>>>(argv[2], metadata());
  else if (kind == "unknown") save<Combination<D, VD, FC<300>, Softmax<50>>>(argv[2], metadata());
  else if (kind == "no_preprocess") save<zoo::SmallD<50>>(argv[2], {});
  else {
    std::fprintf(stderr, "usage: %s combination|average|unknown|no_preprocess OUTPUT.ckpt\n", argv[0]);
    return 2;
  }
}
