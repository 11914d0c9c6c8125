// expect: layer_implemented\(\) \[with Spec = (hcnn::)?Conv<4, 3>.*Model: a layer has no implementation on this backend
// A model on a backend whose layer implementations were not included (here: none at all).
#include <hcnn/layers/conv.hpp>
#include <hcnn/model.hpp>
using namespace hcnn;
int main() { Model<Net<Input<3, 8, 8>, Conv<4, 3>>> model; }
