// hcnn/hcnn.hpp — the umbrella header: everything a program using hcnn needs.
//
// hcnn builds heterogeneous CNNs: base networks declared as compile-time lists of layer
// templates (Net<Input<...>, Conv<...>, ...>), instantiated as Models on a backend.
#pragma once

#include "core/backend.hpp"
#include "core/buffer.hpp"
#include "core/error.hpp"
#include "core/filler.hpp"
#include "core/layer.hpp"
#include "core/param.hpp"
#include "core/random.hpp"
#include "core/shape.hpp"
#include "core/tensor.hpp"
#include "core/type_list.hpp"
#include "layers/activation.hpp"
#include "layers/conv.hpp"
#include "layers/dropout.hpp"
#include "layers/fc.hpp"
#include "layers/input.hpp"
#include "layers/lrn.hpp"
#include "layers/pool.hpp"
#include "layers/softmax.hpp"
#include "backend/cpu.hpp"
#include "io/caffemodel.hpp"
#include "io/checkpoint.hpp"
#include "model.hpp"
#include "net.hpp"
#include "summary.hpp"
#include "train/sgd.hpp"
#include "zoo/caffenet.hpp"
#include "zoo/small.hpp"
#include "zoo/vgg.hpp"
