// hcnn/io.hpp — files: Caffe model import and export, checkpoints, images (stb), datasets,
// IDX (zlib). Brings in networks.hpp, which the model files and checkpoints are of.
#pragma once

#include "networks.hpp"
#include "io/caffemodel.hpp"
#include "io/checkpoint.hpp"
#include "io/dataset.hpp"
#include "io/idx.hpp"
#include "io/image.hpp"
#include "io/image_folder.hpp"
#include "io/preloaded_images.hpp"
