// expect: Average: every base must have the same number of classes
#include <hcnn/hcnn.hpp>
using namespace hcnn;
using Bad = Average<zoo::SmallD<10>, zoo::SmallVD<20>>;
static_assert(Bad::output_shape.c > 0);
