// hcnn/backend/cuda/graph.hpp — a whole training step (forward, backward, the solver's update)
// replayed from a CUDA graph.
//
//   cuda::TrainingGraph step(model, solver);
//   for (Batch batch; loader.next(batch);) {
//     step.run(batch.inputs, batch.labels);      // inputs in host or device memory
//     const double loss = model.loss(batch.labels);
//   }
//
// The network is static, so after one ordinary step of a batch size nothing in a step of that
// size allocates or chooses an algorithm: the next step is captured (the stream records its
// work instead of running it) and launched, and every later one is a single cudaGraphLaunch
// instead of one launch per kernel and library call. A launch reads what changes from step to
// step at launch time: the inputs and labels (copied first into the graph's own buffers, the
// labels into pinned memory), the dropout layers' steps and the solver's hyper-parameters
// (launch_values.hpp). What would make a replay differ from an ordinary step is detected, and
// the step is captured anew: a pass through any model on the thread (which sets host-side state
// such as the batch size and each layer's mode), the TF32 switch, a change in which blobs
// train, a moved buffer (a checkpoint loaded into the solver makes new momentum buffers). So
// the model, solver and dropout streams end each step as an ordinary step leaves them, and
// checkpoints, evaluation and ordinary steps mix freely with graph steps. Two models trained
// in turn on one thread capture anew at every step: give each its own thread.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <span>
#include <utility>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/tensor.hpp"
#include "../../model.hpp"
#include "../../train/metrics.hpp"
#include "../../train/sgd.hpp"
#include "../../train/trainer.hpp"
#include "buffer.hpp"
#include "check.hpp"
#include "context.hpp"
#include "launch_values.hpp"

namespace hcnn::cuda {

template <class ModelT>
class TrainingGraph {
  static_assert(std::same_as<typename ModelT::backend, Cuda>, "cuda::TrainingGraph: captures the steps of a Cuda model");
  using T = typename ModelT::value_type;

 public:
  // How a run() went: the first step of its batch size ran as usual; a step was captured, then
  // launched; a captured step was launched again.
  enum class Run { ordinary, captured, replayed };

  TrainingGraph(ModelT& model, SgdSolver<T, Cuda>& solver)
      : model_(&model), solver_(&solver), params_(model.parameters()) {
    HCNN_CUDA_CHECK(cudaEventCreateWithFlags(&launched_, cudaEventDisableTiming));
  }
  ~TrainingGraph() {
    cudaEventSynchronize(launched_);  // the last launch may still read the pinned labels
    for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
    cudaEventDestroy(launched_);
    cudaFreeHost(labels_);
  }
  TrainingGraph(const TrainingGraph&) = delete;
  TrainingGraph& operator=(const TrainingGraph&) = delete;

  // One training step on a batch (host floats, or device memory) and its labels (host
  // memory); returns the batch's probabilities, as model.forward would. model.loss(labels)
  // reads them.
  const Tensor<T, Cuda>& run(const Tensor<float, Cpu>& inputs, std::span<const int> labels) {
    check(inputs.batch(), inputs.shape(), labels);
    on_backend(inputs, input_);
    return step(labels);
  }
  const Tensor<T, Cuda>& run(const Tensor<T, Cuda>& inputs, std::span<const int> labels) {
    check(inputs.batch(), inputs.shape(), labels);
    input_.resize(inputs.batch(), inputs.shape());
    copy_values(Cuda{}, inputs.data(), inputs.size(), input_.data());
    return step(labels);
  }

  [[nodiscard]] Run last_run() const { return last_run_; }
  [[nodiscard]] std::size_t captures() const { return captures_; }
  // Why a capture failed (every step since has run as usual), or empty.
  [[nodiscard]] const std::string& capture_error() const { return capture_error_; }

 private:
  using Key = std::pair<int, bool>;  // batch size, TF32

  void check(int n, Shape shape, std::span<const int> labels) const {
    if (shape != ModelT::input_shape)
      throw ShapeError("cuda::TrainingGraph: the input is " + to_string(shape) + " per sample, but the network expects " +
                       to_string(ModelT::input_shape));
    if (n <= 0) throw ShapeError("cuda::TrainingGraph: the batch size must be positive, got " + std::to_string(n));
    // A launch does not pass through Model::backward's check: labels are checked here.
    check_labels(labels, n, ModelT::output_shape.c, "cuda::TrainingGraph");
  }

  const Tensor<T, Cuda>& step(std::span<const int> labels) {
    const int n = input_.batch();
    // The last launch read the pinned labels and launch values when it ran: wait for it
    // before writing them.
    HCNN_CUDA_CHECK(cudaEventSynchronize(launched_));
    stage_labels(labels);
    const Key key{n, context().tf32()};
    if (!warm_.contains(key) || !capture_error_.empty()) {
      record_step(n);  // runs: plans, workspaces, masks and momentum come into being
      warm_.insert(key);
      current_.reset();
      last_run_ = Run::ordinary;
      return model_->output();
    }
    last_run_ = Run::replayed;
    if (current_ != key || changes_ != context().changes() || trained_ != trained_blobs() ||
        addresses_ != addresses()) {
      try {
        capture(key, n);
      } catch (const CudaError& e) {
        // Training goes on with ordinary steps: a step that cannot be captured still runs.
        capture_error_ = e.what();
        std::fprintf(stderr, "hcnn: cuda::TrainingGraph could not capture a training step; steps run as usual: %s\n",
                     e.what());
        record_step(n);
        last_run_ = Run::ordinary;
        return model_->output();
      }
      last_run_ = Run::captured;
    }
    values_.stage();
    HCNN_CUDA_CHECK(cudaGraphLaunch(graphs_.at(key), context().stream()));
    HCNN_CUDA_CHECK(cudaEventRecord(launched_, context().stream()));
    values_.advance_counters();
    return model_->output();
  }

  // The step itself, run or recorded: every address it uses stays put from one step to the next.
  void record_step(int n) {
    model_->forward(input_, Mode::train);
    model_->backward(std::span<const int>(labels_, std::size_t(n)));
    solver_->step(params_);
  }

  void capture(const Key& key, int n) {
    const cudaStream_t stream = context().stream();
    values_.clear();
    HCNN_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    capturing_launch_values() = &values_;
    cudaGraph_t graph = nullptr;
    try {
      values_.record_upload(stream);
      record_step(n);
    } catch (...) {  // the stream must not stay in capture mode
      capturing_launch_values() = nullptr;
      cudaStreamEndCapture(stream, &graph);
      if (graph != nullptr) cudaGraphDestroy(graph);
      cudaGetLastError();
      values_.rewind_counters();
      current_.reset();
      throw;
    }
    capturing_launch_values() = nullptr;
    values_.rewind_counters();  // each launch advances them instead
    const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
    if (ended != cudaSuccess) {
      current_.reset();
      HCNN_CUDA_CHECK(ended);  // a call in the step that cannot be captured invalidated the capture
    }
    install(key, graph);
    changes_ = context().changes();
    trained_ = trained_blobs();
    addresses_ = addresses();
    current_ = key;
    ++captures_;
  }

  // Updates the key's executable graph in place when only node parameters changed (cheap), or
  // instantiates it.
  void install(const Key& key, cudaGraph_t graph) {
    auto found = graphs_.find(key);
    if (found != graphs_.end()) {
      cudaGraphExecUpdateResultInfo info{};
      if (cudaGraphExecUpdate(found->second, graph, &info) == cudaSuccess) {
        cudaGraphDestroy(graph);
        return;
      }
      cudaGetLastError();
      cudaGraphExecDestroy(found->second);
      graphs_.erase(found);
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    HCNN_CUDA_CHECK(made);
    graphs_.emplace(key, exec);
  }

  void stage_labels(std::span<const int> labels) {
    if (labels.size() > labels_capacity_) {  // a captured copy reads the old buffer: capture anew
      cudaFreeHost(labels_);
      labels_ = nullptr;
      labels_capacity_ = 0;
      current_.reset();
      HCNN_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&labels_), labels.size() * sizeof(int)));
      labels_capacity_ = labels.size();
    }
    std::copy(labels.begin(), labels.end(), labels_);
  }

  [[nodiscard]] std::vector<bool> trained_blobs() const {
    std::vector<bool> trained;
    trained.reserve(params_.size());
    for (const auto& p : params_) trained.push_back(p.param->trained());
    return trained;
  }

  // The buffers a step uses outside the model's passes: parameters, momentum, inputs.
  [[nodiscard]] std::vector<const void*> addresses() const {
    std::vector<const void*> all{input_.data()};
    for (const auto& p : params_) {
      all.push_back(p.param->value.data());
      all.push_back(p.param->grad.data());
    }
    for (const auto& h : solver_->history()) all.push_back(h.data());
    for (const auto& m : solver_->master()) all.push_back(m.data());
    return all;
  }

  ModelT* model_;
  SgdSolver<T, Cuda>* solver_;
  std::vector<NamedParam<T, Cuda>> params_;
  Tensor<T, Cuda> input_;
  int* labels_ = nullptr;  // pinned host memory, read by each launch
  std::size_t labels_capacity_ = 0;
  LaunchValues values_;
  cudaEvent_t launched_ = nullptr;
  std::map<Key, cudaGraphExec_t> graphs_;
  std::set<Key> warm_;            // batch sizes (and math modes) that ran an ordinary step
  std::optional<Key> current_;    // the graph that the model's host-side state matches
  std::uint64_t changes_ = 0;     // context().changes() when it was captured
  std::vector<bool> trained_;     // which blobs trained then
  std::vector<const void*> addresses_;  // and where its buffers were
  Run last_run_ = Run::ordinary;
  std::size_t captures_ = 0;
  std::string capture_error_;
};

}  // namespace hcnn::cuda

namespace hcnn {

// The Trainer replays a Cuda model's steps (TrainOptions::graph_steps).
template <class N, class T>
struct TrainingGraphOf<Model<N, Cuda, T>> {
  using type = cuda::TrainingGraph<Model<N, Cuda, T>>;
};

}  // namespace hcnn
