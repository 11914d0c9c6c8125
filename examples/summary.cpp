// hcnn_summary — prints the layer-by-layer summary of the paper's base networks, D (CaffeNet)
// and VD (VGG-19), their small analogues and the standard combination [D,VD]+2CL, as hcnn
// builds them: output shapes, parameters and multiply-adds.
#include <hcnn/hcnn.hpp>

#include <iostream>

int main() {
  using namespace hcnn;
  summary<zoo::CaffeNet<1000>>(std::cout, "D = zoo::CaffeNet<1000> (3x227x227 input)");
  std::cout << "\n";
  summary<zoo::VGG19<1000>>(std::cout, "VD = zoo::VGG19<1000> (3x224x224 input)");
  std::cout << "\n";
  summary<zoo::SmallD<50>>(std::cout, "zoo::SmallD<50>, the small D-like analogue (3x64x64 input)");
  std::cout << "\n";
  summary<zoo::SmallVD<50>>(std::cout, "zoo::SmallVD<50>, the small VD-like analogue (3x64x64 input)");
  std::cout << "\n";
  summary<Combination<zoo::CaffeNet<1000>, zoo::VGG19<1000>, FC<4096>, Softmax<101>>>(
      std::cout, "[D,VD]+2CL = Combination<zoo::CaffeNet<1000>, zoo::VGG19<1000>, FC<4096>, Softmax<101>>");
}
