// hcnn/zoo/caffenet.hpp — zoo::CaffeNet<N>: the BVLC reference CaffeNet, the paper's "D".
//
// Exactly models/bvlc_reference_caffenet/deploy.prototxt: 8 weight layers, pooling before LRN,
// grouped conv2/conv4/conv5, 3x227x227 BGR input. 60,965,224 parameters at N = 1000. The
// default layer names (conv1 ... fc8) are Caffe's, so published weights load by name.
#pragma once

#include "../layers/conv.hpp"
#include "../layers/dropout.hpp"
#include "../layers/fc.hpp"
#include "../layers/input.hpp"
#include "../layers/lrn.hpp"
#include "../layers/pool.hpp"
#include "../layers/softmax.hpp"
#include "../net.hpp"

namespace hcnn::zoo {

template <int N = 1000>
using CaffeNet = Net<Input<3, 227, 227>,                                            //
                     Conv<96, 11, 4>, MaxPool<3, 2>, LRN<5>,                        // conv1 pool1 norm1
                     Conv<256, 5, 1, 2, 2>, MaxPool<3, 2>, LRN<5>,                  // conv2 pool2 norm2
                     Conv<384, 3, 1, 1>, Conv<384, 3, 1, 1, 2>, Conv<256, 3, 1, 1, 2>,  // conv3-5
                     MaxPool<3, 2>,                                                 // pool5
                     FC<4096>, Dropout<0.5f>, FC<4096>, Dropout<0.5f>,              // fc6 drop6 fc7 drop7
                     Softmax<N>>;                                                   // fc8 + prob

}  // namespace hcnn::zoo
