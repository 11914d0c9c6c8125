// expect: Conv: the number of output channels must be positive
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Bad = Net<Input<3, 16, 16>, Conv<0, 3>>;
static_assert(Bad::output_shape.c >= 0);
