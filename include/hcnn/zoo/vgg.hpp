// hcnn/zoo/vgg.hpp — zoo::VGG19<N> (the paper's "VD") and zoo::VGG16<N>, as in Caffe.
//
// All convolutions 3x3, stride 1, pad 1, + ReLU; a 2x2/2 max pool after each block; fc6 and
// fc7 of 4096 with dropout; 3x224x224 BGR input. VGG19 (configuration E) has 143,667,240
// parameters at N = 1000. The layer names are those of the published deploy prototxts
// (conv1_1 ... conv5_4, pool1 ... pool5, fc6, fc7, fc8), so the published weights load by name.
#pragma once

#include <array>
#include <string_view>

#include "../layers/conv.hpp"
#include "../layers/dropout.hpp"
#include "../layers/fc.hpp"
#include "../layers/input.hpp"
#include "../layers/pool.hpp"
#include "../layers/softmax.hpp"
#include "../net.hpp"

namespace hcnn::zoo {

template <int Width>
using Conv3 = Conv<Width, 3, 1, 1>;

template <int N = 1000>
struct VGG19 : Net<Input<3, 224, 224>,                                        //
                   Conv3<64>, Conv3<64>, MaxPool<2, 2>,                       // block 1
                   Conv3<128>, Conv3<128>, MaxPool<2, 2>,                     // block 2
                   Conv3<256>, Conv3<256>, Conv3<256>, Conv3<256>, MaxPool<2, 2>,  // block 3
                   Conv3<512>, Conv3<512>, Conv3<512>, Conv3<512>, MaxPool<2, 2>,  // block 4
                   Conv3<512>, Conv3<512>, Conv3<512>, Conv3<512>, MaxPool<2, 2>,  // block 5
                   FC<4096>, Dropout<0.5f>, FC<4096>, Dropout<0.5f>, Softmax<N>> {
  static constexpr std::array<std::string_view, 26> layer_names{
      "conv1_1", "conv1_2", "pool1",   "conv2_1", "conv2_2", "pool2",   "conv3_1", "conv3_2", "conv3_3",
      "conv3_4", "pool3",   "conv4_1", "conv4_2", "conv4_3", "conv4_4", "pool4",   "conv5_1", "conv5_2",
      "conv5_3", "conv5_4", "pool5",   "fc6",     "drop6",   "fc7",     "drop7",   "fc8"};
};

template <int N = 1000>
struct VGG16 : Net<Input<3, 224, 224>,                                        //
                   Conv3<64>, Conv3<64>, MaxPool<2, 2>,                       // block 1
                   Conv3<128>, Conv3<128>, MaxPool<2, 2>,                     // block 2
                   Conv3<256>, Conv3<256>, Conv3<256>, MaxPool<2, 2>,         // block 3
                   Conv3<512>, Conv3<512>, Conv3<512>, MaxPool<2, 2>,         // block 4
                   Conv3<512>, Conv3<512>, Conv3<512>, MaxPool<2, 2>,         // block 5
                   FC<4096>, Dropout<0.5f>, FC<4096>, Dropout<0.5f>, Softmax<N>> {
  static constexpr std::array<std::string_view, 23> layer_names{
      "conv1_1", "conv1_2", "pool1",   "conv2_1", "conv2_2", "pool2", "conv3_1", "conv3_2",
      "conv3_3", "pool3",   "conv4_1", "conv4_2", "conv4_3", "pool4", "conv5_1", "conv5_2",
      "conv5_3", "pool5",   "fc6",     "drop6",   "fc7",     "drop7", "fc8"};
};

}  // namespace hcnn::zoo
