// expect: Net: every element after the Input must be a layer template
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Bad = Net<Input<3, 16, 16>, Conv<8, 3>, int>;
static_assert(Bad::depth == 2);
