// hcnn/io/checkpoint.hpp — saving and restoring a model (and its solver) to resume training.
//
// Works for anything with parameters(): a Model of a Net, and the Combination and Average
// models built from them. The format is versioned and self-describing:
//
//   "HCNNCKPT"  u32 version = 3
//   payload:    u32 element size (4 or 8)   u64 iteration   u64 epoch
//               string architecture (architecture.hpp)   u32 metadata count, per entry string key, value
//               u32 blob count
//               per blob: string layer, string name, u32 rank, i32 dims[rank]
//               per blob: its values (learnable parameters and layer state: BatchNorm statistics)
//               u8 has solver; if 1: f32 lr, momentum, weight_decay, u32 count, per blob u64 n + values
//               u32 stream count; per stream: string layer, u64 state[4] (dropout streams: key, step, 0, 0)
//   u32 CRC-32 of the payload
//
// A model whose element type is no floating type (the Cuda backend's bf16) is saved as float:
// its solver's FP32 master weights where a solver is given (loading with a solver restores
// them, so training resumes exactly), else its weights widened. Such a checkpoint loads into
// a float model too.
//
// Versions 1 (no epoch, architecture, metadata or streams) and 2 are still read. Version 2 has
// version 3's layout, but its streams are the states of the sequential generator that drew
// dropout masks before they became counter-based (core/philox.hpp): they cannot be continued,
// so a version-2 checkpoint resumes with the model's own streams. With the streams, the
// iteration and the epoch, a run resumed from an epoch's checkpoint continues exactly as the
// uninterrupted run, dropout and BatchNorm included. The architecture string lets a program
// find out which network type to rebuild (read_checkpoint_info), and loading refuses a
// checkpoint whose blobs fit but whose architecture differs (another dropout rate, say).
// Metadata are the caller's: hcnn_classify reads "classes" (one name per line) and
// "preprocess" (to_string(Preprocess)).
//
// (strings are u32 length + bytes, everything little-endian). The structure is checked
// against the model before anything is written into it, so loading a checkpoint of another
// architecture names the first mismatched layer and both shapes and leaves the model as it
// was; a corrupt or truncated file fails its checksum or bounds checks the same way. Saving is
// atomic (io/atomic_file.hpp): a crash or full disk never destroys the previous checkpoint.
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/finite.hpp"
#include "../core/shape.hpp"
#include "../architecture.hpp"
#include "../train/sgd.hpp"
#include "atomic_file.hpp"
#include "binary.hpp"
#include "mapped_file.hpp"

namespace hcnn {

struct CheckpointInfo {
  std::uint64_t iteration = 0;
  std::uint64_t epoch = 0;  // epochs completed (0 when not saved by a Trainer)
  std::map<std::string, std::string> metadata{};
  std::string architecture{};  // as saved (empty in version 1); save_checkpoint writes the model's
  bool has_solver = false;
};

namespace io {

inline constexpr char checkpoint_magic[8] = {'H', 'C', 'N', 'N', 'C', 'K', 'P', 'T'};
inline constexpr std::uint32_t checkpoint_version = 3;

// Streams bytes to a FILE while keeping the running CRC of what it wrote.
class ChecksummedWriter {
 public:
  explicit ChecksummedWriter(std::FILE* file) : file_(file) {}
  void bytes(const void* data, std::size_t n) {
    if (n == 0) return;
    std::fwrite(data, 1, n, file_);
    crc_ = crc32({static_cast<const std::byte*>(data), n}, crc_);
  }
  template <class V>
  void value(const V& v) {
    bytes(&v, sizeof v);
  }
  void string(const std::string& s) {
    value(static_cast<std::uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  [[nodiscard]] std::uint32_t crc() const { return crc_; }

 private:
  std::FILE* file_;
  std::uint32_t crc_ = 0;
};

// The checked payload of a checkpoint's bytes (magic, version and checksum verified), its
// version, and the reader positioned after the header fields, which it has read into `info`.
struct CheckpointHeader {
  std::uint32_t version;
  std::uint32_t element_size;
  ByteReader reader;
};

inline CheckpointHeader read_checkpoint_header(std::span<const std::byte> bytes, const std::filesystem::path& path,
                                               CheckpointInfo& info) {
  constexpr std::size_t header = sizeof checkpoint_magic + sizeof(std::uint32_t);
  if (bytes.size() < header + sizeof(std::uint32_t) ||
      std::memcmp(bytes.data(), checkpoint_magic, sizeof checkpoint_magic) != 0)
    throw IoError(path, "not an hcnn checkpoint (no HCNNCKPT header)");
  std::uint32_t version;
  std::memcpy(&version, bytes.data() + sizeof checkpoint_magic, sizeof version);
  if (version < 1 || version > checkpoint_version)
    throw IoError(path, "checkpoint format version " + std::to_string(version) + ", this hcnn reads versions 1 to " +
                            std::to_string(checkpoint_version));
  const auto payload = bytes.subspan(header, bytes.size() - header - sizeof(std::uint32_t));
  std::uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - sizeof stored_crc, sizeof stored_crc);
  if (crc32(payload) != stored_crc) throw IoError(path, "checksum mismatch: the checkpoint is corrupt or truncated");
  CheckpointHeader h{version, 0, ByteReader(payload)};
  try {
    h.element_size = h.reader.read<std::uint32_t>("the element size");
    info.iteration = h.reader.read<std::uint64_t>("the iteration");
    if (version >= 2) {
      info.epoch = h.reader.read<std::uint64_t>("the epoch");
      info.architecture = h.reader.string("the architecture");
      const auto entries = h.reader.read<std::uint32_t>("the metadata count");
      for (std::uint32_t i = 0; i < entries; ++i) {
        std::string key = h.reader.string("a metadata key");
        info.metadata[std::move(key)] = h.reader.string("a metadata value");
      }
    }
  } catch (const TruncatedError& e) {
    throw IoError(path, std::string("corrupt checkpoint: ") + e.what());
  }
  return h;
}

// "'a' where the other has 'b'": the first " | "-separated part in which two architectures differ.
inline std::string first_difference(const std::string& a, const std::string& b) {
  std::size_t start = 0;
  while (true) {
    const std::size_t end_a = std::min(a.find(" | ", start), a.size()), end_b = std::min(b.find(" | ", start), b.size());
    if (end_a != end_b || a.compare(start, end_a - start, b, start, end_b - start) != 0)
      return "'" + a.substr(start, end_a - start) + "' where the model has '" + b.substr(start, end_b - start) + "'";
    if (end_a == a.size()) return "'" + a + "' against '" + b + "'";
    start = end_a + 3;
  }
}

}  // namespace io

// The solver type of a model, spelled out so that `nullptr` can be passed for "no solver".
template <class ModelT>
using SolverOf = SgdSolver<typename ModelT::value_type, typename ModelT::backend>;

namespace io {
// The type a checkpoint stores a model's values in: its own, or float for a storage type such
// as the Cuda backend's bf16, whose solver's FP32 master weights are then what is saved.
template <class T>
using StoredType = std::conditional_t<std::is_floating_point_v<T>, T, float>;

// Blob i's values as a checkpoint stores them, for a model whose element type is not Stored:
// converted; where the solver keeps a master copy, the master's value wherever its rounding is
// still the weight (weights written since the last update count as they are).
template <class Stored, class T, class Backend, class Solver>
std::vector<Stored> stored_values(const Buffer<T, Backend>& weights, const Solver* solver, std::size_t i) {
  std::vector<T> w;
  read_on_host(weights, [&](std::span<const T> v) { w.assign(v.begin(), v.end()); });
  std::vector<Stored> values(w.begin(), w.end());
  if constexpr (Solver::keeps_master) {
    if (solver != nullptr && i < solver->master().size())
      read_on_host(solver->master()[i], [&](std::span<const Stored> master) {
        for (std::size_t j = 0; j < w.size(); ++j) {
          const T rounded = static_cast<T>(master[j]);
          if (std::memcmp(&rounded, &w[j], sizeof(T)) == 0) values[j] = master[j];
        }
      });
  }
  return values;
}
}  // namespace io

// Saves the model, the solver (if given) and info's iteration, epoch and metadata; the
// architecture written is always the model's own.
template <class ModelT>
void save_checkpoint(const std::filesystem::path& path, ModelT& model, const SolverOf<ModelT>* solver,
                     const CheckpointInfo& info) {
  using T = typename ModelT::value_type;
  using Stored = io::StoredType<T>;
  const std::string arch = architecture<typename ModelT::net>();
  auto params = model.parameters();
  const auto streams = model.random_streams();
  // Never write a checkpoint load_checkpoint would refuse.
  if (solver != nullptr) solver->check_fits(params);
  if (const auto bad = non_finite_parameter(params))
    throw NumericError(path.string() + ": not saved: " + *bad + " (a checkpoint of a diverged model could not be loaded)");
  if (solver != nullptr)
    for (std::size_t i = 0; i < solver->history().size(); ++i) {
      read_on_host(solver->history()[i], [&](std::span<const Stored> h) {
        if (const auto at = first_non_finite(h))
          throw NumericError(path.string() + ": not saved: the momentum of layer '" + params[i].layer + "' " +
                             params[i].param->name + " " + non_finite_text(double(h[*at]), *at));
      });
    }
  io::write_atomically(path, [&](std::FILE* file) {
    std::fwrite(io::checkpoint_magic, 1, sizeof io::checkpoint_magic, file);
    std::fwrite(&io::checkpoint_version, sizeof io::checkpoint_version, 1, file);
    io::ChecksummedWriter out(file);
    out.value(static_cast<std::uint32_t>(sizeof(Stored)));
    out.value(info.iteration);
    out.value(info.epoch);
    out.string(arch);
    out.value(static_cast<std::uint32_t>(info.metadata.size()));
    for (const auto& [key, value] : info.metadata) {
      out.string(key);
      out.string(value);
    }
    out.value(static_cast<std::uint32_t>(params.size()));
    for (const auto& [layer, p] : params) {
      out.string(layer);
      out.string(p->name);
      out.value(static_cast<std::uint32_t>(p->rank));
      for (int d = 0; d < p->rank; ++d) out.value(static_cast<std::int32_t>(p->dims[d]));
    }
    const auto write_values = [&](std::span<const Stored> values) { out.bytes(values.data(), values.size_bytes()); };
    for (std::size_t i = 0; i < params.size(); ++i) {
      if constexpr (std::same_as<T, Stored>) read_on_host(params[i].param->value, write_values);
      else write_values(io::stored_values<Stored>(params[i].param->value, solver, i));
    }
    const bool has_solver = solver != nullptr;
    out.value(static_cast<std::uint8_t>(has_solver));
    if (has_solver) {
      out.value(solver->config().lr);
      out.value(solver->config().momentum);
      out.value(solver->config().weight_decay);
      const auto& history = solver->history();
      out.value(static_cast<std::uint32_t>(history.size()));
      for (const auto& h : history) {
        out.value(static_cast<std::uint64_t>(h.size()));
        read_on_host(h, write_values);
      }
    }
    out.value(static_cast<std::uint32_t>(streams.size()));
    for (const auto& [layer, stream] : streams) {
      out.string(layer);
      for (std::uint64_t word : stream->state()) out.value(word);
    }
    const std::uint32_t crc = out.crc();
    std::fwrite(&crc, sizeof crc, 1, file);
  });
}

template <class ModelT>
void save_checkpoint(const std::filesystem::path& path, ModelT& model, const SolverOf<ModelT>* solver = nullptr,
                     std::uint64_t iteration = 0) {
  save_checkpoint(path, model, solver, CheckpointInfo{.iteration = iteration});
}

// A checkpoint's header (iteration, epoch, architecture, metadata) without a model: how a
// program learns which network type to build before loading. Checks the checksum too.
inline CheckpointInfo read_checkpoint_info(const std::filesystem::path& path) {
  const io::MappedFile file(path);
  CheckpointInfo info;
  io::read_checkpoint_header(file.bytes(), path, info);
  return info;
}

// Restores `model` (and `solver`, if given and saved) from the bytes of a checkpoint; `path`
// names them in errors. Everything is validated first; on any error nothing is changed and an
// IoError names the file and the problem.
template <class ModelT>
CheckpointInfo load_checkpoint(std::span<const std::byte> bytes, const std::filesystem::path& path, ModelT& model,
                               SolverOf<ModelT>* solver = nullptr) {
  using T = typename ModelT::value_type;
  using Stored = io::StoredType<T>;
  CheckpointInfo info;
  io::CheckpointHeader header = io::read_checkpoint_header(bytes, path, info);
  const std::uint32_t version = header.version;
  if (header.element_size != sizeof(Stored))
    throw IoError(path, "holds " + std::to_string(header.element_size * 8) + "-bit values, the model stores " +
                            std::to_string(sizeof(Stored) * 8) + "-bit ones");
  auto params = model.parameters();
  auto streams = model.random_streams();
  std::vector<std::array<std::uint64_t, 4>> stream_states;
  struct Restore {
    std::span<const std::byte> from;
    Buffer<T, typename ModelT::backend>* to;
  };
  std::vector<Restore> restores;
  std::vector<std::span<const std::byte>> history;
  Sgd config;
  try {
    io::ByteReader& in = header.reader;
    const auto count = in.read<std::uint32_t>("the blob count");
    std::vector<std::size_t> sizes;
    for (std::uint32_t i = 0; i < count; ++i) {
      const std::string layer = in.string("a layer name");
      const std::string name = in.string("a blob name");
      const auto rank = in.read<std::uint32_t>("a blob rank");
      if (rank == 0 || rank > 4) throw IoError(path, "blob " + layer + "." + name + " has rank " + std::to_string(rank));
      std::vector<std::int32_t> dims(rank);
      std::size_t size = 1;
      for (auto& d : dims) {
        d = in.read<std::int32_t>("blob dimensions");
        if (d <= 0) throw IoError(path, "blob " + layer + "." + name + " has dimension " + std::to_string(d));
        size *= static_cast<std::size_t>(d);
      }
      if (i >= params.size())
        throw IoError(path, "has " + std::to_string(count) + " parameter blobs, the model " + std::to_string(params.size()) +
                                "; first extra: layer '" + layer + "' " + name + " " + dims_to_string(dims));
      const auto& [model_layer, p] = params[i];
      const std::vector<std::int32_t> model_dims(p->dims.begin(), p->dims.begin() + p->rank);
      if (layer != model_layer || name != p->name || dims != model_dims)
        throw IoError(path, "was saved from another architecture: its blob " + std::to_string(i) + " is layer '" + layer +
                                "' " + name + " " + dims_to_string(dims) + ", the model's is layer '" + model_layer + "' " +
                                p->name + " " + dims_to_string(model_dims));
      sizes.push_back(size);
    }
    if (count < params.size())
      throw IoError(path, "has " + std::to_string(count) + " parameter blobs, the model " + std::to_string(params.size()) +
                              "; first missing: layer '" + params[count].layer + "' " + params[count].param->name);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      restores.push_back({in.take(sizes[i] * sizeof(Stored), "parameter values"), &params[i].param->value});
      if (const auto at = first_non_finite_bytes<Stored>(restores.back().from))
        throw IoError(path, "layer '" + params[i].layer + "' " + params[i].param->name + " " +
                                non_finite_text(double(value_at<Stored>(restores.back().from, *at)), *at) +
                                ": the checkpoint holds a diverged or corrupt model");
    }
    info.has_solver = in.read<std::uint8_t>("the solver flag") != 0;
    if (info.has_solver) {
      config.lr = in.read<float>("the solver state");
      config.momentum = in.read<float>("the solver state");
      config.weight_decay = in.read<float>("the solver state");
      const auto blobs = in.read<std::uint32_t>("the solver state");
      if (blobs != 0 && blobs != params.size())
        throw IoError(path, "holds momentum for " + std::to_string(blobs) + " blobs, the model has " +
                                std::to_string(params.size()));
      for (std::uint32_t i = 0; i < blobs; ++i) {
        const auto n = in.read<std::uint64_t>("the solver state");
        if (n != sizes[i]) throw IoError(path, "momentum blob " + std::to_string(i) + " has the wrong size");
        history.push_back(in.take(n * sizeof(Stored), "the momentum values"));
        if (const auto at = first_non_finite_bytes<Stored>(history.back()))
          throw IoError(path, "the momentum of layer '" + params[i].layer + "' " + params[i].param->name + " " +
                                  non_finite_text(double(value_at<Stored>(history.back(), *at)), *at));
      }
    }
    if (version >= 2) {
      const auto count_streams = in.read<std::uint32_t>("the random streams");
      if (count_streams != streams.size())
        throw IoError(path, "holds " + std::to_string(count_streams) + " random streams, the model has " +
                                std::to_string(streams.size()));
      for (std::uint32_t i = 0; i < count_streams; ++i) {
        const std::string layer = in.string("a random stream's layer");
        if (layer != streams[i].layer)
          throw IoError(path, "random stream " + std::to_string(i) + " belongs to layer '" + layer + "', the model's to '" +
                                  streams[i].layer + "'");
        std::array<std::uint64_t, 4> state;
        for (auto& word : state) word = in.read<std::uint64_t>("a random stream");
        if (version >= 3) stream_states.push_back(state);
      }
    }
    if (in.remaining() != 0) throw IoError(path, std::to_string(in.remaining()) + " unexpected bytes at the end");
    // The blobs fit; a difference they cannot show (a dropout rate, an LRN constant) still counts.
    const std::string model_architecture = architecture<typename ModelT::net>();
    if (version >= 2 && info.architecture != model_architecture)
      throw IoError(path, "was saved from another architecture: " + io::first_difference(info.architecture, model_architecture));
  } catch (const io::TruncatedError& e) {
    throw IoError(path, std::string("corrupt checkpoint: ") + e.what());
  }
  // Validated: now write (converting from Stored where the buffer's type differs).
  const auto copy_into = [](auto& buffer, std::span<const std::byte> from) {
    write_on_host(buffer, [&](auto values) {
      using V = typename decltype(values)::value_type;
      if constexpr (std::same_as<V, Stored>) std::memcpy(values.data(), from.data(), values.size_bytes());
      else
        for (std::size_t j = 0; j < values.size(); ++j) values[j] = static_cast<V>(value_at<Stored>(from, j));
    });
  };
  for (const auto& r : restores) copy_into(*r.to, r.from);
  for (std::size_t i = 0; i < stream_states.size(); ++i) streams[i].stream->set_state(stream_states[i]);
  if (solver != nullptr) {
    if constexpr (SolverOf<ModelT>::keeps_master) {  // the values saved were the master weights
      auto& master = solver->master();
      master.clear();
      for (const auto& r : restores) {
        master.emplace_back(r.from.size() / sizeof(Stored));
        copy_into(master.back(), r.from);
      }
    }
    if (info.has_solver) {
      solver->config() = config;
      auto& target = solver->history();
      target.clear();
      for (const auto& h : history) {
        target.emplace_back(h.size() / sizeof(Stored));
        copy_into(target.back(), h);
      }
    }
  }
  return info;
}

// The same from a file.
template <class ModelT>
CheckpointInfo load_checkpoint(const std::filesystem::path& path, ModelT& model, SolverOf<ModelT>* solver = nullptr) {
  const io::MappedFile file(path);
  return load_checkpoint(file.bytes(), path, model, solver);
}

}  // namespace hcnn
