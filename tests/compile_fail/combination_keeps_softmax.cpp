// expect: Combination: a base keeps its Softmax classifier
// Drop<Net, 0> keeps the base's class probabilities as its "features".
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Bad = Combination<Drop<zoo::SmallD<10>, 0>, zoo::SmallVD<10>, FC<64>, Softmax<5>>;
static_assert(Bad::concat_width > 0);
