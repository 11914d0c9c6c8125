// The networks of the Caltech-101 experiment (examples/caltech101/main.cpp), shared with
// hcnn_classify so that it can run the checkpoints the experiment writes.
//
// Source task: 51 classes (standing in for ImageNet); target task: the other 50. D and D' are
// the same type (zoo::SmallD), trained from different seeds; VD is zoo::SmallVDBN. The CLs put
// a dropout after fc-alpha, as Caffe's fc7 has one.
#pragma once

#include <hcnn/hcnn.hpp>

namespace caltech101 {

using namespace hcnn;

inline constexpr int source_classes = 51;
inline constexpr int target_classes = 50;

using D = zoo::SmallD<source_classes>;
using VD = zoo::SmallVDBN<source_classes>;
using Drop5 = Dropout<0.5f>;

// Step (b), on the source task: Table 2's HCNN rows and Table 1's variants.
template <class A, class B, int Alpha = 512>
using SourceJoint = Combination<A, B, FC<Alpha>, Drop5, Softmax<source_classes>>;  // [A,B]+2CL (Fig. 5a)
using SourceJoint5c = Combination<Drop<D, 2>, Drop<VD, 2>, FC<512>, Drop5, FC<768>, Drop5, Softmax<source_classes>>;
using SourceJoint5d = Combination<D, VD, FC<512>, Drop5, FC<768>, Drop5, Softmax<source_classes>>;  // after pool5

// Step (c), on the target task: a single network with its two top layers fine-tuned (Fig. 5b)
// and the joints with a new softmax.
template <class Base>
using TargetSingle = Combination<Base, FC<512>, Drop5, Softmax<target_classes>>;
template <class A, class B>
using TargetJoint = Combination<A, B, FC<512>, Drop5, Softmax<target_classes>>;

// How the images become inputs: the shorter side to 72 px and the centre 72x72 kept (in
// memory), then a 64x64 crop (random and mirrored in training), BGR, minus the source
// images' channel means, over their standard deviation.
inline constexpr int stored_size = 72;
inline Preprocess preprocessing(std::array<float, 3> mean, float scale) {
  return {.resize_mode = Preprocess::Resize::shorter_side, .resize_to = stored_size, .crop = 64, .random_crop = true,
          .mirror = true, .mean = mean, .scale = scale};
}

}  // namespace caltech101
