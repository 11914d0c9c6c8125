// hcnn/core/error.hpp — the exceptions hcnn throws for errors a user can cause at run time.
//
// Every message names what was involved (file, layer, tensor) and the expected and actual
// values, so that a user can act on it without a debugger.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

namespace hcnn {

// Base of all hcnn exceptions.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A tensor, batch or blob does not have the shape an operation needs.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A value is NaN or infinite where a finite number is needed (a diverged training run, a
// model that would write or compute garbage).
class NumericError : public Error {
 public:
  using Error::Error;
};

// A file is missing, unreadable, truncated or corrupt, or cannot be written.
class IoError : public Error {
 public:
  IoError(const std::filesystem::path& path, const std::string& problem)
      : Error((path.empty() ? std::string("(empty path)") : path.string()) + ": " + problem), path_(path) {}
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace hcnn
