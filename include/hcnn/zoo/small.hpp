// hcnn/zoo/small.hpp — small analogues of D and VD for experiments on small images.
//
// Sized for minutes of training on a 2-core CPU (see docs/zoo.md): both take 3x64x64 input
// (e.g. random 64x64 crops of images decoded at 72x72) and end in fc 512 - 512 - N.
//   SmallD<N>:  5 convolutions with large early kernels, grouped layers and LRN, like CaffeNet;
//               1.44 M parameters + the classifier; pool5 is 128x3x3.
//   SmallVD<N>: 13 convolutions, all 3x3 pad 1, blocks of 2-2-3-3-3 with 16-32-64-96-128 maps
//               and a 2x2 max pool after each, like VGG; pool5 is 128x2x2.
//   SmallVDBN<N>: SmallVD with a BatchNorm (+ ReLU) after each convolution, Caffe's
//               Convolution -> BatchNorm -> Scale -> ReLU. Trained from scratch for minutes, the
//               plain 13-convolution net ends weaker than SmallD; with BatchNorm it ends
//               stronger, as VD is stronger than D in the paper (../shared/docs/scaled-experiment.md).
#pragma once

#include "../layers/batch_norm.hpp"
#include "../layers/conv.hpp"
#include "../layers/dropout.hpp"
#include "../layers/fc.hpp"
#include "../layers/input.hpp"
#include "../layers/lrn.hpp"
#include "../layers/pool.hpp"
#include "../layers/softmax.hpp"
#include "../net.hpp"

namespace hcnn::zoo {

template <int N>
using SmallD = Net<Input<3, 64, 64>,                                                   //
                   Conv<48, 11, 2>, MaxPool<3, 2>, LRN<5>,                             // 48x13x13
                   Conv<128, 5, 1, 2, 2>, MaxPool<3, 2>, LRN<5>,                       // 128x6x6
                   Conv<192, 3, 1, 1>, Conv<192, 3, 1, 1, 2>, Conv<128, 3, 1, 1, 2>,   //
                   MaxPool<3, 2>,                                                      // 128x3x3
                   FC<512>, Dropout<0.5f>, FC<512>, Dropout<0.5f>, Softmax<N>>;

template <int Width>
using SmallConv3 = Conv<Width, 3, 1, 1>;

template <int N>
using SmallVD = Net<Input<3, 64, 64>,                                                            //
                    SmallConv3<16>, SmallConv3<16>, MaxPool<2, 2>,                              // 16x32x32
                    SmallConv3<32>, SmallConv3<32>, MaxPool<2, 2>,                              // 32x16x16
                    SmallConv3<64>, SmallConv3<64>, SmallConv3<64>, MaxPool<2, 2>,              // 64x8x8
                    SmallConv3<96>, SmallConv3<96>, SmallConv3<96>, MaxPool<2, 2>,              // 96x4x4
                    SmallConv3<128>, SmallConv3<128>, SmallConv3<128>, MaxPool<2, 2>,           // 128x2x2
                    FC<512>, Dropout<0.5f>, FC<512>, Dropout<0.5f>, Softmax<N>>;

template <int Width>
using SmallConv3BN = Conv<Width, 3, 1, 1, 1, Identity>;  // the BatchNorm after it applies the ReLU
// A moving-average fraction of 0.9, not Caffe's default 0.999: Caffe's test-time statistics
// weigh every past iteration by 0.999^age, so after the ~800 iterations of a minutes-long
// schedule they are dominated by the first, untrained iterations (measured: 28.8 % against
// D's 40.2 % on the experiment's source task, while training accuracy was higher). 0.9 is
// PyTorch's default momentum of 0.1.
using SmallBN = BatchNorm<ReLU, 1e-5f, 0.9f>;

template <int N>
using SmallVDBN = Net<Input<3, 64, 64>,                                                                  //
                      SmallConv3BN<16>, SmallBN, SmallConv3BN<16>, SmallBN, MaxPool<2, 2>,                // 16x32x32
                      SmallConv3BN<32>, SmallBN, SmallConv3BN<32>, SmallBN, MaxPool<2, 2>,                // 32x16x16
                      SmallConv3BN<64>, SmallBN, SmallConv3BN<64>, SmallBN, SmallConv3BN<64>, SmallBN,   //
                      MaxPool<2, 2>,                                                                     // 64x8x8
                      SmallConv3BN<96>, SmallBN, SmallConv3BN<96>, SmallBN, SmallConv3BN<96>, SmallBN,   //
                      MaxPool<2, 2>,                                                                     // 96x4x4
                      SmallConv3BN<128>, SmallBN, SmallConv3BN<128>, SmallBN, SmallConv3BN<128>, SmallBN,  //
                      MaxPool<2, 2>,                                                                     // 128x2x2
                      FC<512>, Dropout<0.5f>, FC<512>, Dropout<0.5f>, Softmax<N>>;

}  // namespace hcnn::zoo
