// expect: Combination: a base would lose more weight layers than it has
// Five CLs cut five weight layers from each base, but the small base has only four.
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Small = Net<Input<3, 16, 16>, Conv<8, 3>, FC<16>, FC<16>, Softmax<10>>;
using Bad = Combination<zoo::SmallD<10>, Small, FC<64>, FC<64>, FC<64>, FC<64>, Softmax<5>>;
static_assert(Bad::concat_width > 0);
