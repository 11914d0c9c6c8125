// expect: Combination: needs a base network
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Bad = Combination<FC<64>, Softmax<5>>;
static_assert(Bad::concat_width > 0);
