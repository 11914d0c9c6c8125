// expect: Conv: Groups must divide the number of output channels
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Bad = Net<Input<4, 32, 32>, Conv<5, 3, 1, 1, 2>>;
static_assert(Bad::output_shape.c > 0);
