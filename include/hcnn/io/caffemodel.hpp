// hcnn/io/caffemodel.hpp — reading Caffe .caffemodel files and importing their weights.
//
// A .caffemodel is a serialized NetParameter. Both layer forms are read: the legacy V1
// `layers` (field 2; name 4, type enum 5, blobs 6) in which the published CaffeNet and VGG-19
// are written, and V2 `layer` (field 100; name 1, type string 2, blobs 7). A BlobProto's shape
// is its legacy (num, channels, height, width) if any of those is present, else shape.dim; its
// data are float32, packed or unpacked, or double_data. The file is memory-mapped and blobs
// point into it, so nothing is copied until import_caffemodel writes into a model.
//
// export_caffemodel(model, path) writes a model's weights as a V2 .caffemodel (one layer per
// weight layer, named as in the model), which Caffe and import_caffemodel read back.
//
// import_caffemodel(model, path[, names]) matches the model's weight layers to the file's
// layers by name (extra layers in the file, such as data and loss layers, are ignored, as
// Caffe ignores them), checks every blob's shape, and only then copies: on any error the
// model is unchanged and the IoError names the file, the layer and both shapes.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "../core/finite.hpp"
#include "../core/shape.hpp"
#include "atomic_file.hpp"
#include "mapped_file.hpp"
#include "protobuf.hpp"

namespace hcnn {

struct CaffeBlob {
  std::vector<std::int64_t> shape;            // as stored (legacy blobs: 4 axes)
  std::span<const std::byte> packed_floats;   // data, packed (wire type 2)
  std::span<const std::byte> packed_doubles;  // double_data, packed
  std::vector<float> unpacked;                // data or double_data, unpacked (wire types 5 / 1)

  [[nodiscard]] std::size_t count() const {
    if (!packed_floats.empty()) return packed_floats.size() / 4;
    if (!packed_doubles.empty()) return packed_doubles.size() / 8;
    return unpacked.size();
  }
  // The shape as Caffe compares shapes: left-padded with 1s to 4 axes ((out, in) -> (1, 1, out, in)).
  [[nodiscard]] std::vector<std::int64_t> legacy_shape() const {
    std::vector<std::int64_t> s(shape.size() < 4 ? 4 - shape.size() : 0, 1);
    s.insert(s.end(), shape.begin(), shape.end());
    return s;
  }
  // Value i as a T (a double too large for T becomes infinite).
  template <class T>
  [[nodiscard]] T value(std::size_t i) const {
    if (!packed_floats.empty()) {
      float v;
      std::memcpy(&v, packed_floats.data() + 4 * i, 4);  // unaligned little-endian
      return static_cast<T>(v);
    }
    if (!packed_doubles.empty()) {
      double v;
      std::memcpy(&v, packed_doubles.data() + 8 * i, 8);
      return static_cast<T>(v);
    }
    return static_cast<T>(unpacked[i]);
  }
  template <class T>
  void copy_to(T* out) const {
    for (std::size_t i = 0, n = count(); i < n; ++i) out[i] = value<T>(i);
  }
  // The index of the first value that is NaN or infinite as a T, if any.
  template <class T>
  [[nodiscard]] std::optional<std::size_t> first_non_finite() const {
    for (std::size_t i = 0, n = count(); i < n; ++i)
      if (!is_finite(value<T>(i))) return i;
    return std::nullopt;
  }
};

struct CaffeLayer {
  std::string name;
  std::string type;  // V2 type string, or the V1 enum's Caffe name ("Convolution", ...)
  std::vector<CaffeBlob> blobs;
};

class CaffeModel {
 public:
  // Maps and parses the file; throws IoError naming it and the problem.
  explicit CaffeModel(const std::filesystem::path& path) : file_(io::MappedFile(path)), path_(path) {
    parse(file_->bytes());
  }
  // Parses bytes held elsewhere (which must outlive this object); `name` stands for the file
  // in errors.
  CaffeModel(std::span<const std::byte> bytes, std::filesystem::path name) : path_(std::move(name)) { parse(bytes); }

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::vector<CaffeLayer>& layers() const { return layers_; }
  [[nodiscard]] const CaffeLayer* find(std::string_view layer) const {
    for (const auto& l : layers_)
      if (l.name == layer) return &l;
    return nullptr;
  }

 private:
  void parse(std::span<const std::byte> bytes) {
    if (bytes.empty()) throw IoError(path_, "empty file, not a .caffemodel");
    try {
      parse_net(bytes);
    } catch (const io::pb::ParseError& e) {
      throw IoError(path_, std::string("corrupt or truncated .caffemodel: ") + e.what());
    }
    if (layers_.empty()) throw IoError(path_, "not a .caffemodel: no layers found");
  }

  void parse_net(std::span<const std::byte> bytes) {
    io::pb::Reader net(bytes);
    io::pb::Field f;
    while (net.next(f)) {
      if (f.number == 1 && f.type == io::pb::WireType::length_delimited) {
        name_ = as_string(f);
      } else if (f.number == 2 || f.number == 100) {
        io::pb::expect(f, io::pb::WireType::length_delimited, "a layer");
        layers_.push_back(parse_layer(f, f.number == 2));
      }
    }
  }

  static std::string as_string(const io::pb::Field& f) {
    return {reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size()};
  }

  static std::string v1_type_name(std::uint64_t type) {
    switch (type) {
      case 4: return "Convolution";
      case 5: return "Data";
      case 6: return "Dropout";
      case 14: return "InnerProduct";
      case 15: return "LRN";
      case 17: return "Pooling";
      case 18: return "ReLU";
      case 20: return "Softmax";
      case 21: return "SoftmaxWithLoss";
      case 22: return "Split";
      default: return "V1 type " + std::to_string(type);
    }
  }

  static CaffeLayer parse_layer(const io::pb::Field& message, bool v1) {
    CaffeLayer layer;
    const std::uint32_t name_field = v1 ? 4 : 1, type_field = v1 ? 5 : 2, blobs_field = v1 ? 6 : 7;
    io::pb::Reader reader(message.bytes, message.offset);
    io::pb::Field f;
    while (reader.next(f)) {
      if (f.number == name_field) {
        io::pb::expect(f, io::pb::WireType::length_delimited, "a layer name");
        layer.name = as_string(f);
      } else if (f.number == type_field) {
        if (v1) {
          io::pb::expect(f, io::pb::WireType::varint, "a V1 layer type");
          layer.type = v1_type_name(f.value);
        } else {
          io::pb::expect(f, io::pb::WireType::length_delimited, "a layer type");
          layer.type = as_string(f);
        }
      } else if (f.number == blobs_field) {
        io::pb::expect(f, io::pb::WireType::length_delimited, "a blob");
        layer.blobs.push_back(parse_blob(f, layer.name));
      }
    }
    return layer;
  }

  static CaffeBlob parse_blob(const io::pb::Field& message, const std::string& layer) {
    CaffeBlob blob;
    std::int64_t legacy[4] = {0, 0, 0, 0};
    bool has_legacy = false;
    std::vector<std::int64_t> dims;
    io::pb::Reader reader(message.bytes, message.offset);
    io::pb::Field f;
    while (reader.next(f)) {
      if (f.number >= 1 && f.number <= 4) {
        io::pb::expect(f, io::pb::WireType::varint, "a legacy blob dimension");
        legacy[f.number - 1] = static_cast<std::int32_t>(f.value);
        has_legacy = true;
      } else if (f.number == 5) {  // data: float32
        if (f.type == io::pb::WireType::length_delimited) {
          if (f.bytes.size() % 4 != 0) throw io::pb::ParseError("packed float data of a size not divisible by 4", f.offset);
          blob.packed_floats = f.bytes;
        } else {
          io::pb::expect(f, io::pb::WireType::fixed32, "blob data");
          float v;
          const auto bits = static_cast<std::uint32_t>(f.value);
          std::memcpy(&v, &bits, 4);
          blob.unpacked.push_back(v);
        }
      } else if (f.number == 7) {  // shape: BlobShape { repeated int64 dim = 1 [packed] }
        io::pb::expect(f, io::pb::WireType::length_delimited, "a blob shape");
        io::pb::Reader shape(f.bytes, f.offset);
        io::pb::Field d;
        while (shape.next(d)) {
          if (d.number != 1) continue;
          if (d.type == io::pb::WireType::length_delimited) {
            io::pb::Reader packed(d.bytes, d.offset);
            while (!packed.done()) dims.push_back(static_cast<std::int64_t>(packed.varint()));
          } else {
            io::pb::expect(d, io::pb::WireType::varint, "a blob dimension");
            dims.push_back(static_cast<std::int64_t>(d.value));
          }
        }
      } else if (f.number == 8) {  // double_data
        if (f.type == io::pb::WireType::length_delimited) {
          if (f.bytes.size() % 8 != 0) throw io::pb::ParseError("packed double data of a size not divisible by 8", f.offset);
          blob.packed_doubles = f.bytes;
        } else {
          io::pb::expect(f, io::pb::WireType::fixed64, "blob double data");
          double v;
          std::memcpy(&v, &f.value, 8);
          blob.unpacked.push_back(static_cast<float>(v));
        }
      }
    }
    blob.shape = has_legacy ? std::vector<std::int64_t>(legacy, legacy + 4) : dims;
    // The element count must be the product of the shape; dimensions must be sane.
    std::int64_t product = 1;
    for (std::int64_t d : blob.shape) {
      if (d < 0 || d > (std::int64_t{1} << 40)) throw io::pb::ParseError("blob of layer '" + layer + "' has dimension " + std::to_string(d), message.offset);
      product = (d != 0 && product > (std::int64_t{1} << 50) / d) ? -1 : product * d;
      if (product < 0) throw io::pb::ParseError("blob of layer '" + layer + "' is impossibly large", message.offset);
    }
    const int sources = !blob.packed_floats.empty() + !blob.packed_doubles.empty() + !blob.unpacked.empty();
    if (sources > 1) throw io::pb::ParseError("blob of layer '" + layer + "' mixes data encodings", message.offset);
    if (static_cast<std::uint64_t>(product) != blob.count())
      throw io::pb::ParseError("blob of layer '" + layer + "' has shape " + dims_to_string(blob.shape) + " (" +
                               std::to_string(product) + " values) but holds " + std::to_string(blob.count()) +
                               " values",
                           message.offset);
    return blob;
  }

  std::optional<io::MappedFile> file_;
  std::filesystem::path path_;
  std::string name_;
  std::vector<CaffeLayer> layers_;
};

// The file's blobs for a model layer named `name` of the given kind: the layer's own blobs, and
// for BatchNorm (whose hcnn layer is Caffe's BatchNorm + Scale pair) those of the Scale layer
// that follows it in the file. Nothing when the file has no such layer.
inline std::optional<std::vector<const CaffeBlob*>> caffe_blobs_for(const CaffeModel& file, const std::string& name,
                                                                    std::string_view kind) {
  std::vector<const CaffeBlob*> blobs;
  const auto& layers = file.layers();
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].name != name) continue;
    for (const auto& b : layers[i].blobs) blobs.push_back(&b);
    if (kind == "BatchNorm") {
      for (std::size_t j = i + 1; j < layers.size(); ++j) {
        if (layers[j].type == "Scale") {
          for (const auto& b : layers[j].blobs) blobs.push_back(&b);
          break;
        }
        if (!layers[j].blobs.empty()) break;  // another layer with weights: no Scale belongs to this one
      }
    }
    return blobs;
  }
  return std::nullopt;
}

// Copies the weights of `file` into `model`. `names`, if given, has one entry per model layer
// (the Caffe layer to read it from; empty for "leave this layer as it is"); otherwise the
// model's own layer names are used. Validates everything before writing anything.
template <class ModelT>
void import_caffemodel(ModelT& model, const CaffeModel& file, std::span<const std::string> names = {}) {
  if (!names.empty() && names.size() != ModelT::depth)
    throw Error("import_caffemodel: " + std::to_string(names.size()) + " layer names given for a network of " +
                std::to_string(ModelT::depth) + " layers");
  struct Copy {
    const CaffeBlob* blob;
    Buffer<typename ModelT::value_type, typename ModelT::backend>* target;
  };
  std::vector<Copy> copies;
  model.for_each_layer([&]<std::size_t I>(auto& layer) {
    auto params = layer.params();
    if (params.empty()) return;
    const std::string& name = names.empty() ? model.names()[I] : names[I];
    if (name.empty()) return;
    constexpr std::string_view kind = std::remove_cvref_t<decltype(layer)>::spec::kind;
    const auto found = caffe_blobs_for(file, name, kind);
    const std::string where = "layer '" + name + "' (" + std::string(kind) + ")";
    const char* expected_blobs = kind == "BatchNorm" ? " (mean, variance and factor of BatchNorm, then scale and bias of "
                                                       "the Scale layer after it)"
                                                     : " (weight and bias)";
    if (!found) throw IoError(file.path(), "has no " + where + " that the model needs");
    const auto& sources = *found;
    if (sources.size() != params.size())
      throw IoError(file.path(), where + " has " + std::to_string(sources.size()) + " blobs, the model expects " +
                                     std::to_string(params.size()) + expected_blobs);
    for (std::size_t b = 0; b < params.size(); ++b) {
      auto& param = params[b];
      std::vector<std::int64_t> expected(4 - param.rank, 1);
      for (int d = 0; d < param.rank; ++d) expected.push_back(param.dims[d]);
      const auto actual = sources[b]->legacy_shape();
      if (actual != expected)
        throw IoError(file.path(), where + " " + param.name + " has shape " + dims_to_string(sources[b]->shape) +
                                       " in the file, but the model's is " + dims_to_string(expected));
      using T = typename ModelT::value_type;
      if (const auto at = sources[b]->template first_non_finite<T>())
        throw IoError(file.path(), where + " " + param.name + " " + non_finite_text(double(sources[b]->template value<T>(*at)), *at) +
                                       ": the model file is corrupt");
      copies.push_back({sources[b], &param.value});
    }
  });
  for (const auto& c : copies)
    write_on_host(*c.target, [&](auto values) { c.blob->copy_to(values.data()); });
}

template <class ModelT>
void import_caffemodel(ModelT& model, const std::filesystem::path& path, std::span<const std::string> names = {}) {
  import_caffemodel(model, CaffeModel(path), names);
}

namespace io {

inline std::string varint_bytes(std::uint64_t value) {
  std::string out;
  do {
    const auto byte = static_cast<char>((value & 0x7F) | (value >= 0x80 ? 0x80 : 0));
    out.push_back(byte);
    value >>= 7;
  } while (value != 0);
  return out;
}
// Tag and length of a length-delimited field.
inline std::string field_header(std::uint32_t field, std::uint64_t length) {
  return varint_bytes(std::uint64_t{field} << 3 | 2) + varint_bytes(length);
}

}  // namespace io

namespace io {

// One V2 layer message: name, type and blobs (shape + packed float data).
template <class ParamT>
void write_caffe_layer(std::FILE* file, const std::string& name, const std::string& type, std::span<ParamT> params) {
  auto put = [&](const std::string& bytes) { std::fwrite(bytes.data(), 1, bytes.size(), file); };
  std::vector<std::string> headers;
  const std::string head = field_header(1, name.size()) + name + field_header(2, type.size()) + type;
  std::uint64_t layer_size = head.size();
  for (auto& p : params) {
    std::string dims;
    for (int d = 0; d < p.rank; ++d) dims += varint_bytes(static_cast<std::uint64_t>(p.dims[d]));
    const std::string shape = field_header(7, dims.size() + field_header(1, dims.size()).size()) +
                              field_header(1, dims.size()) + dims;
    const std::uint64_t data_size = 4 * p.size();
    const std::string blob_head = shape + field_header(5, data_size);
    headers.push_back(field_header(7, blob_head.size() + data_size) + blob_head);
    layer_size += headers.back().size() + data_size;
  }
  put(field_header(100, layer_size) + head);
  std::vector<float> values;
  for (std::size_t b = 0; b < params.size(); ++b) {
    put(headers[b]);
    read_on_host(params[b].value, [&](auto blob) { values.assign(blob.begin(), blob.end()); });
    std::fwrite(values.data(), sizeof(float), values.size(), file);
  }
}

}  // namespace io

// Conv -> Convolution, FC and Softmax -> InnerProduct, BatchNorm -> a BatchNorm layer of the
// same name and a Scale layer named <name>_scale after it (what import_caffemodel pairs).
template <class ModelT>
void export_caffemodel(ModelT& model, const std::filesystem::path& path, const std::string& net_name = "hcnn") {
  if (const auto bad = non_finite_parameter(model.parameters()))  // never write what import would refuse
    throw NumericError(path.string() + ": not exported: " + *bad);
  io::write_atomically(path, [&](std::FILE* file) {
    const std::string header = io::field_header(1, net_name.size()) + net_name;
    std::fwrite(header.data(), 1, header.size(), file);
    model.for_each_layer([&]<std::size_t I>(auto& layer) {
      auto params = layer.params();
      if (params.empty()) return;
      using Spec = typename std::remove_cvref_t<decltype(layer)>::spec;
      const std::string& name = model.names()[I];
      if constexpr (Spec::kind == std::string_view("BatchNorm")) {
        io::write_caffe_layer(file, name, "BatchNorm", params.subspan(0, 3));
        io::write_caffe_layer(file, name + "_scale", "Scale", params.subspan(3));
      } else {
        io::write_caffe_layer(file, name, Spec::kind == std::string_view("Conv") ? "Convolution" : "InnerProduct", params);
      }
    });
  });
}

}  // namespace hcnn
