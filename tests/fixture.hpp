// Reads the PyTorch reference fixtures written by tests/fixtures/generate.py.
#pragma once

#include <hcnn/core/error.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace hcnn::testing {

struct Array {
  std::vector<int> dims;
  std::vector<double> data;
};

class Fixture {
 public:
  explicit Fixture(const std::string& name) : path_(std::string(HCNN_FIXTURES_DIR) + "/" + name + ".bin") {
    std::ifstream in(path_, std::ios::binary);
    if (!in) throw IoError(path_, "cannot open the fixture (run tests/fixtures/generate.py)");
    char magic[8];
    in.read(magic, 8);
    if (!in || std::memcmp(magic, "HCNNFX01", 8) != 0) throw IoError(path_, "not a fixture file");
    const auto count = read<std::uint32_t>(in);
    for (std::uint32_t i = 0; i < count; ++i) {
      std::string key(read<std::uint32_t>(in), '\0');
      in.read(key.data(), static_cast<std::streamsize>(key.size()));
      Array a;
      a.dims.resize(read<std::uint32_t>(in));
      std::size_t n = 1;
      for (int& d : a.dims) n *= static_cast<std::size_t>(d = read<std::int32_t>(in));
      a.data.resize(n);
      in.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(n * sizeof(double)));
      if (!in) throw IoError(path_, "truncated at array " + key);
      arrays_[key] = std::move(a);
    }
  }

  [[nodiscard]] const Array& operator[](const std::string& key) const {
    const auto it = arrays_.find(key);
    if (it == arrays_.end()) throw IoError(path_, "has no array '" + key + "'");
    return it->second;
  }
  [[nodiscard]] std::vector<int> labels(const std::string& key) const {
    std::vector<int> out;
    for (double v : (*this)[key].data) out.push_back(static_cast<int>(v));
    return out;
  }

 private:
  template <class V>
  static V read(std::ifstream& in) {
    V v{};
    in.read(reinterpret_cast<char*>(&v), sizeof v);
    return v;
  }
  std::string path_;
  std::map<std::string, Array> arrays_;
};

}  // namespace hcnn::testing
