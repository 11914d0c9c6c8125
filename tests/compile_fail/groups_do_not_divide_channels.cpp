// expect: Conv: Groups must divide the number of input channels
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Bad = Net<Input<3, 32, 32>, Conv<6, 3, 1, 1, 2>>;  // 3 input channels, 2 groups
static_assert(Bad::output_shape.c > 0);
