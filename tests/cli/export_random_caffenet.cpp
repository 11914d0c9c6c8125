// Writes a CaffeNet .caffemodel with seeded random weights, standing in for the published
// file (244 MB, not shipped) in the end-to-end tests of hcnn_classify.
#include <hcnn/hcnn.hpp>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s OUTPUT.caffemodel SEED\n", argv[0]);
    return 2;
  }
  hcnn::Model<hcnn::zoo::CaffeNet<1000>> model(std::strtoull(argv[2], nullptr, 10),
                                               hcnn::Init{.classifier = hcnn::Filler::gaussian(0.05f)});
  hcnn::export_caffemodel(model, argv[1], "CaffeNet");
}
