// Writes a CaffeNet .caffemodel with seeded random weights, standing in for the published
// file (244 MB, not shipped) in the end-to-end tests of hcnn_classify. With `nan`, one weight
// of conv3 (index 17) is NaN, as in a corrupt download: written behind hcnn's back, since
// export_caffemodel refuses non-finite weights.
#include <hcnn/hcnn.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 4 && std::string(argv[3]) == "nan")) {
    std::fprintf(stderr, "usage: %s OUTPUT.caffemodel SEED [nan]\n", argv[0]);
    return 2;
  }
  hcnn::Model<hcnn::zoo::CaffeNet<1000>> model(std::strtoull(argv[2], nullptr, 10),
                                               hcnn::Init{.classifier = hcnn::Filler::gaussian(0.05f)});
  constexpr float marker = 12345.678f;
  const bool poison = argc == 4;
  if (poison)
    for (auto& [layer, param] : model.parameters())
      if (layer == "conv3" && param->name == "weight") param->value[17] = marker;
  hcnn::export_caffemodel(model, argv[1], "CaffeNet");
  if (!poison) return 0;
  std::vector<char> bytes;
  {
    std::ifstream in(argv[1], std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (std::size_t i = 0; i + 4 <= bytes.size(); ++i)
    if (std::memcmp(bytes.data() + i, &marker, 4) == 0) {
      const float nan = std::numeric_limits<float>::quiet_NaN();
      std::memcpy(bytes.data() + i, &nan, 4);
    }
  std::ofstream(argv[1], std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
