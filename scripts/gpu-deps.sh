#!/usr/bin/env bash
# Gathers, on a build machine, the headers scripts/gpu-check.sh needs on a lent GPU machine,
# whose image has CUDA, cuDNN (PyTorch's) and a compiler but not Debian's -dev packages:
# Eigen, Catch2, stb and zlib's headers, into .gpu-deps/ (git-ignored; the device call
# carries it). Run from the repository root before the device call:
#   bash scripts/gpu-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu-deps
mkdir -p .gpu-deps/include/stb
cp -r /usr/include/eigen3/Eigen .gpu-deps/include/
cp -r /usr/include/catch2 .gpu-deps/include/
cp /usr/include/stb/stb_image.h /usr/include/stb/stb_image_resize.h /usr/include/stb/stb_image_write.h .gpu-deps/include/stb/
cp /usr/include/zlib.h /usr/include/zconf.h .gpu-deps/include/
du -sh .gpu-deps
