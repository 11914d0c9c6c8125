// hcnn/backend/cuda/launch_values.hpp — host values that a captured graph reads when it is
// launched, not when it was captured.
//
// A CUDA graph replays its kernels with the arguments they were captured with. Two of a
// training step's arguments change from step to step: a dropout layer's step (its Philox
// counter, advanced by every training pass) and the solver's hyper-parameters (the learning
// rate follows a schedule). Code that passes one to a kernel asks for it through
// launch_counter / launch_value. Outside a capture these give the value alone; while a graph is
// being captured (graph.hpp) they also give the kernel a slot of the graph's device block,
// which each launch of the graph first fills with the host values of that moment.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../../core/error.hpp"
#include "check.hpp"
#include "kernels.hpp"

namespace hcnn::cuda {

class LaunchValues {
 public:
  // 8-byte slots: three hyper-parameters and one counter per dropout layer that trains.
  static constexpr std::size_t capacity = 256;
  static constexpr std::size_t bytes = capacity * 8;

  LaunchValues() {
    HCNN_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&staged_), bytes));
    HCNN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&device_), bytes));
  }
  ~LaunchValues() {
    cudaFree(device_);
    cudaFreeHost(staged_);
  }
  LaunchValues(const LaunchValues&) = delete;
  LaunchValues& operator=(const LaunchValues&) = delete;

  // A new capture: no slots yet.
  void clear() {
    counters_.clear();
    values_.clear();
  }

  // A counter that the captured code advances by one after reading it (a dropout layer's
  // step). The capture's own advance is undone by rewind_counters(); each launch reads the
  // counter's value of the moment and advances it afterwards, as an ordinary step would.
  const std::uint64_t* counter(std::uint64_t& host) {
    for (const Counter& c : counters_)
      if (c.host == &host)
        throw Error("cuda::TrainingGraph: a dropout layer ran twice in one captured step (each may run once)");
    counters_.push_back({&host, host, take_slot()});
    return reinterpret_cast<const std::uint64_t*>(device_ + counters_.back().slot * 8);
  }
  // A value read as it is at each launch (a hyper-parameter); one slot per host variable.
  const float* value(const float& host) {
    for (const Value& v : values_)
      if (v.host == &host) return reinterpret_cast<const float*>(device_ + v.slot * 8);
    values_.push_back({&host, take_slot()});
    return reinterpret_cast<const float*>(device_ + values_.back().slot * 8);
  }

  // The graph's first node, recorded when the capture begins: the staged values into the
  // device block.
  void record_upload(cudaStream_t stream) const {
    HCNN_CUDA_CHECK(cudaMemcpyAsync(device_, staged_, bytes, cudaMemcpyHostToDevice, stream));
  }
  void rewind_counters() {
    for (const Counter& c : counters_) *c.host = c.at_capture;
  }
  // Before a launch, once the previous launch has read the staging memory.
  void stage() {
    for (const Counter& c : counters_) std::memcpy(staged_ + c.slot * 8, c.host, sizeof(std::uint64_t));
    for (const Value& v : values_) std::memcpy(staged_ + v.slot * 8, v.host, sizeof(float));
  }
  void advance_counters() {
    for (const Counter& c : counters_) ++*c.host;
  }

 private:
  struct Counter {
    std::uint64_t* host;
    std::uint64_t at_capture;
    std::size_t slot;
  };
  struct Value {
    const float* host;
    std::size_t slot;
  };

  std::size_t take_slot() const {
    const std::size_t slot = counters_.size() + values_.size();
    if (slot >= capacity)
      throw Error("cuda::TrainingGraph: more than " + std::to_string(capacity) +
                  " values change between launches of the captured step");
    return slot;
  }

  unsigned char* staged_ = nullptr;  // pinned host memory
  unsigned char* device_ = nullptr;
  std::vector<Counter> counters_;
  std::vector<Value> values_;
};

// The LaunchValues of the graph this thread is capturing, or null.
inline LaunchValues*& capturing_launch_values() {
  thread_local LaunchValues* values = nullptr;
  return values;
}

// A kernel's counter argument (read, then advanced by one on the host by the caller).
inline kernels::Scalar<std::uint64_t> launch_counter(std::uint64_t& host) {
  LaunchValues* capture = capturing_launch_values();
  return {host, capture != nullptr ? capture->counter(host) : nullptr};
}

// A kernel's hyper-parameter argument.
inline kernels::Scalar<float> launch_value(const float& host) {
  LaunchValues* capture = capturing_launch_values();
  return {host, capture != nullptr ? capture->value(host) : nullptr};
}

}  // namespace hcnn::cuda
