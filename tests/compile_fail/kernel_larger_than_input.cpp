// expect: Conv: the kernel is larger than its \(padded\) input map
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Bad = Net<Input<3, 32, 32>, Conv<16, 5, 2>, MaxPool<2, 2>, Conv<32, 11>>;  // 7x7 map, 11x11 kernel
static_assert(Bad::output_shape.c > 0);
