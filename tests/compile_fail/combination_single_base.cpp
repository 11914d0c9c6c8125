// expect: Combination: needs at least two base networks
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Bad = Combination<zoo::SmallD<10>, FC<64>, Softmax<5>>;
static_assert(Bad::concat_width > 0);
