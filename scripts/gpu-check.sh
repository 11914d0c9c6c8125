#!/usr/bin/env bash
# The Cuda backend's checks on a lent GPU machine (issue 14), in one run of well under 10 min:
#   1. builds hcnn's kernels (nvcc, sm_90) and the GPU tests and benchmark (the C++ compiler);
#   2. runs the GPU tests: every layer and a whole training step against the CPU backend;
#   3. compute-sanitizer memcheck on a small training step, ordinary and captured in a graph;
#   4. the benchmarks: hcnn_bench_gpu beside PyTorch with cuDNN (benchmarks/gpu_peer.py), FP32
#      (CaffeNet, VGG-19 and [D,VD]+2CL at batch 1, 32 and 128), then TF32 and BF16 at 128.
# Everything it prints is also written under $OUT (default ./gpu-out). The image there has no
# Debian -dev packages: run `bash scripts/gpu-deps.sh` here first and carry .gpu-deps, e.g.
#   device run --carry .gpu-deps -- bash scripts/gpu-check.sh
# It builds without CMake, so it needs nothing but a C++20 compiler, nvcc and cuDNN.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
step() { echo; echo "== $* ($(date +%T))"; }

CUDA=${CUDA_HOME:-/usr/local/cuda}
export PATH=$CUDA/bin:$PATH
# cuDNN: beside the toolkit, or PyTorch's wheel (nvidia-cudnn-cu13).
CUDNN=${CUDNN_ROOT:-}
if [ -z "$CUDNN" ]; then
  if [ -f "$CUDA/include/cudnn.h" ]; then CUDNN=$CUDA
  else CUDNN=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)
  fi
fi
CUDNN_LIB=$(ls "$CUDNN"/lib64/libcudnn.so* "$CUDNN"/lib/libcudnn.so* 2>/dev/null | head -1)
step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
g++ --version | head -1; nvcc --version | tail -2; echo "cuDNN: $CUDNN ($CUDNN_LIB)"
[ -n "$CUDNN_LIB" ] || { echo "no cuDNN found: set CUDNN_ROOT"; exit 1; }
export LD_LIBRARY_PATH=$(dirname "$CUDNN_LIB"):$CUDA/lib64:${LD_LIBRARY_PATH:-}

BUILD=build-gpu
mkdir -p $BUILD
INCLUDES="-Iinclude -I.gpu-deps/include -I.gpu-deps/include/stb -I$CUDA/include -I$CUDNN/include"
CXX_FLAGS="-std=c++20 -O2 -march=native -fopenmp $INCLUDES"
LIBS="$BUILD/kernels.o -L$CUDA/lib64 -L$(dirname "$CUDNN_LIB") -l:$(basename "$CUDNN_LIB") -lcublas -lcudart -l:libz.so.1"

step "build (parallel)"
nvcc -std=c++20 -O3 -arch=sm_90 $INCLUDES -c src/cuda/kernels.cu -o $BUILD/kernels.o || exit 1
builds=()
for program in tests/gpu/test_cuda.cpp tests/gpu/test_cuda_layers.cpp benchmarks/gpu_throughput.cpp; do
  name=$(basename "$program" .cpp)
  (g++ $CXX_FLAGS "$program" $LIBS -o $BUILD/$name > $BUILD/$name.log 2>&1 || echo "FAILED to build $name") &
  builds+=($!)
done
wait "${builds[@]}"  # not a bare wait: that would wait for the tee above too
cat $BUILD/*.log

step "GPU tests"
timeout 120 $BUILD/test_cuda
timeout 240 $BUILD/test_cuda_layers --durations yes

step "compute-sanitizer memcheck on a small training step, ordinary and from a CUDA graph"
timeout 180 compute-sanitizer --tool memcheck --error-exitcode 9 $BUILD/test_cuda_layers "[model],[graph]"
echo "memcheck exit status: $?"

step "benchmarks: hcnn (FP32), then PyTorch (FP32), then both in TF32 and in BF16; the ratios"
timeout 200 $BUILD/gpu_throughput --batch 1,32,128 --repeats 5 | tee $OUT/hcnn-fp32.txt
PYTHONUNBUFFERED=1 timeout 150 python3 benchmarks/gpu_peer.py --batch 1,32,128 --repeats 5 | tee $OUT/pytorch-fp32.txt
python3 benchmarks/gpu_ratio.py $OUT/hcnn-fp32.txt $OUT/pytorch-fp32.txt
for precision in tf32 bf16; do
  timeout 90 $BUILD/gpu_throughput --net vgg19,combination --batch 128 --repeats 5 --$precision | tee $OUT/hcnn-$precision.txt
  PYTHONUNBUFFERED=1 timeout 70 python3 benchmarks/gpu_peer.py --net vgg19,combination --batch 128 --repeats 5 \
    --$precision | tee $OUT/pytorch-$precision.txt
  python3 benchmarks/gpu_ratio.py $OUT/hcnn-$precision.txt $OUT/pytorch-$precision.txt
done
step "per-layer forward times, VGG-19 at batch 32"
timeout 60 $BUILD/gpu_throughput --net vgg19 --batch 32 --repeats 5 --layers
step "done"
