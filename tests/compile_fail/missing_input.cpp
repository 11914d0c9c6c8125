// expect: Net: the first element must be Input<C, H, W>
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Bad = Net<Conv<8, 3>, FC<10>>;
static_assert(Bad::depth == 1);
