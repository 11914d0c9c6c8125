// hcnn/io/atomic_file.hpp — writing a file so that it is either wholly new or untouched.
//
// The content goes to a temporary file beside the target, is flushed and fsync'ed, and is then
// renamed over the target (atomic on POSIX file systems); the directory is fsync'ed so the
// rename survives a crash. A full disk or a write error at any point leaves the previous file
// as it was and no temporary behind, and throws an IoError naming the target. A process killed
// mid-write leaves the previous file intact and its temporary, which the next write of the
// same target removes.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

#include "../core/error.hpp"

namespace hcnn::io {

// Removes the temporaries of `target` (".<name>.tmp-<pid>-<n>") whose writing process no longer
// runs: what a process killed in the middle of a write (SIGKILL, SIGXFSZ) leaves behind.
inline void remove_stale_temporaries(const std::filesystem::path& directory, const std::string& prefix) {
  std::error_code error;
  for (std::filesystem::directory_iterator it(directory, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const std::size_t dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos || rest.find_first_not_of("0123456789") != dash) continue;
    const long pid = std::stol(rest.substr(0, dash));
    if (pid > 0 && pid != long(::getpid()) && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      std::filesystem::remove(it->path(), ignored);
    }
  }
}

// Calls write(FILE*) to produce the content; returns only once the file is in place.
inline void write_atomically(const std::filesystem::path& target, const std::function<void(std::FILE*)>& write) {
  static std::atomic<unsigned> counter{0};
  if (target.empty()) throw IoError(target, "no file given to write");
  const std::filesystem::path directory = target.has_parent_path() ? target.parent_path() : ".";
  const std::string prefix = std::string(".").append(target.filename().string()).append(".tmp-");
  remove_stale_temporaries(directory, prefix);
  const std::filesystem::path temporary =
      directory / (prefix + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  auto fail = [&](const std::string& what, int error) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw IoError(target, what + (error ? std::string(": ") + std::strerror(error) : std::string()));
  };

  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (file == nullptr) fail("cannot create a file in " + directory.string(), errno);
  try {
    write(file);
  } catch (...) {
    std::fclose(file);
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw;
  }
  if (std::ferror(file) || std::fflush(file) != 0) {
    const int error = errno;
    std::fclose(file);
    fail("write failed", error);
  }
  if (::fsync(::fileno(file)) != 0) {
    const int error = errno;
    std::fclose(file);
    fail("fsync failed", error);
  }
  if (std::fclose(file) != 0) fail("close failed", errno);
  if (std::rename(temporary.c_str(), target.c_str()) != 0) fail("cannot replace the file", errno);
  if (const int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

}  // namespace hcnn::io
