// expect: Pool: the window is larger than its \(padded\) input map
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Bad = Net<Input<3, 16, 16>, Conv<8, 3, 2>, MaxPool<3, 2>, MaxPool<3, 2>, MaxPool<3, 2>>;  // 7 -> 3 -> 1
static_assert(Bad::output_shape.c > 0);
