#!/usr/bin/env bash
# Builds and runs every check CI runs, on a fresh Debian 12 machine (as root, or with sudo):
#   1. the test suite (Release build): unit, gradient, PyTorch-fixture, must-not-compile,
#      header, consumer-package and command-line tests;
#   2. the same tests under AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. each libFuzzer target (clang) for HCNN_FUZZ_SECONDS seconds (default 30).
# The main suite runs last, so its summary closes the output.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo apt-get install -y cmake g++ make pkg-config libeigen3-dev zlib1g-dev catch2 libstb-dev dataset-fashion-mnist \
  clang libomp-dev libclang-rt-14-dev python3-matplotlib python3-sklearn

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHCNN_SANITIZE=address,undefined
cmake --build build-asan -j2 --target hcnn_tests hcnn_classify export_random_caffenet save_random_checkpoint

cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DHCNN_BUILD_FUZZERS=ON -DHCNN_BUILD_TESTS=OFF \
  -DHCNN_BUILD_EXAMPLES=OFF -DHCNN_INSTALL=OFF -DHCNN_FUZZ_SECONDS="${HCNN_FUZZ_SECONDS:-30}"
cmake --build build-fuzz -j2

ctest --test-dir build-fuzz --output-on-failure -j2 -L fuzz
ctest --test-dir build-asan --output-on-failure -j2 -LE "consumer|compile_fail|experiment|gpu|cuda"
ctest --test-dir build --output-on-failure -j2
