// expect: Combination: a base would keep none of its weight layers
// Dropping all of a base's weight layers would leave the raw image as its top.
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Shallow = Net<Input<3, 64, 64>, Conv<8, 3>, MaxPool<2, 2>, Softmax<10>>;
using Bad = Combination<zoo::SmallD<10>, Shallow, FC<64>, Softmax<5>>;
static_assert(Bad::concat_width > 0);
