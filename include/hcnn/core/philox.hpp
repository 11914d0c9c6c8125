// hcnn/core/philox.hpp — Philox4x32-10, the counter-based generator behind dropout masks.
//
// A counter-based generator is a pure function of (counter, key): value i of a mask needs no
// state carried from value i-1, so the CPU (any thread count) and a GPU kernel (any launch
// shape) draw bit-identical masks, and a training step with dropout can be compared between
// backends. The algorithm is Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"
// (SC'11), checked against Random123's published known answers (tests/test_gradients.cpp).
//
// This header is also compiled by nvcc for the Cuda backend's kernels, hence HCNN_HOST_DEVICE.
#pragma once

#include <array>
#include <cstdint>

#if defined(__CUDACC__)
#define HCNN_HOST_DEVICE __host__ __device__
#else
#define HCNN_HOST_DEVICE
#endif

namespace hcnn {

struct Philox4x32 {
  std::uint32_t v[4];
};

// Philox4x32 with 10 rounds: four 32-bit outputs for a 128-bit counter and a 64-bit key.
HCNN_HOST_DEVICE constexpr Philox4x32 philox4x32_10(Philox4x32 counter, std::uint32_t key0, std::uint32_t key1) {
  constexpr std::uint32_t multiplier0 = 0xD2511F53u, multiplier1 = 0xCD9E8D57u;
  constexpr std::uint32_t weyl0 = 0x9E3779B9u, weyl1 = 0xBB67AE85u;  // the key schedule's increments
  std::uint32_t* c = counter.v;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t product0 = std::uint64_t{multiplier0} * c[0];
    const std::uint64_t product1 = std::uint64_t{multiplier1} * c[2];
    const std::uint32_t next[4] = {static_cast<std::uint32_t>(product1 >> 32) ^ c[1] ^ key0,
                                   static_cast<std::uint32_t>(product1),
                                   static_cast<std::uint32_t>(product0 >> 32) ^ c[3] ^ key1,
                                   static_cast<std::uint32_t>(product0)};
    for (int i = 0; i < 4; ++i) c[i] = next[i];
    key0 += weyl0;
    key1 += weyl1;
  }
  return counter;
}

// Where a layer's masks come from: a 64-bit key (drawn from the model's seed when the layer is
// filled) and the number of training passes drawn so far. Value i of pass `step` is word i % 4
// of philox4x32_10({i / 4 (64 bits), step (64 bits)}, key). Checkpoints save {key, step}.
struct CounterStream {
  std::uint64_t key = 0;
  std::uint64_t step = 0;

  [[nodiscard]] std::array<std::uint64_t, 4> state() const { return {key, step, 0, 0}; }
  void set_state(const std::array<std::uint64_t, 4>& state) {
    key = state[0];
    step = state[1];
  }
};

// The four draws of block `block` (values 4 * block .. 4 * block + 3) of pass `step`.
HCNN_HOST_DEVICE constexpr Philox4x32 counter_block(std::uint64_t key, std::uint64_t step, std::uint64_t block) {
  return philox4x32_10({{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                         static_cast<std::uint32_t>(step), static_cast<std::uint32_t>(step >> 32)}},
                       static_cast<std::uint32_t>(key), static_cast<std::uint32_t>(key >> 32));
}

// Dropout keeps a value whose 32-bit draw is at least this threshold: probability 1 - p, to
// within 2^-32. An integer comparison, so both backends decide identically.
constexpr std::uint32_t keep_threshold(double drop_probability) {
  return static_cast<std::uint32_t>(drop_probability * 4294967296.0);
}

}  // namespace hcnn
