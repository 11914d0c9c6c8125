// expect: LRN: the window size must be odd
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Bad = Net<Input<8, 16, 16>, LRN<4>>;
static_assert(Bad::depth == 1);
