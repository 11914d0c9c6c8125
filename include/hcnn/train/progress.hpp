// hcnn/train/progress.hpp — progress of long work: a bar on a terminal, plain lines otherwise.
//
// On a terminal the bar redraws in place with the figures the caller reports (loss, accuracy,
// images/s) and the time left; when the output is a file or a pipe (CI, a log) it prints a
// plain line about every tenth of the work instead, so logs stay readable.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace hcnn {

enum class ProgressStyle { automatic, bar, lines, none };

class Progress {
 public:
  explicit Progress(ProgressStyle style = ProgressStyle::automatic, std::FILE* out = stderr) : out_(out) {
    if (style == ProgressStyle::automatic) style = isatty(fileno(out)) ? ProgressStyle::bar : ProgressStyle::lines;
    style_ = style;
  }

  void start(std::string label, std::size_t total) {
    label_ = std::move(label);
    total_ = total;
    next_line_ = 0;
    started_ = std::chrono::steady_clock::now();
  }

  // `done` of `total` units finished; `figures` is the caller's summary ("loss 2.31 acc 34 %").
  void update(std::size_t done, const std::string& figures) {
    if (style_ == ProgressStyle::none || total_ == 0) return;
    const double elapsed = seconds();
    const double left = done > 0 ? elapsed * double(total_ - done) / double(done) : 0.0;
    if (style_ == ProgressStyle::bar) {
      constexpr int width = 28;
      const int filled = int(double(width) * double(done) / double(total_));
      std::string bar(std::size_t(filled), '=');
      if (filled < width) bar += '>' + std::string(std::size_t(width - filled - 1), ' ');
      std::fprintf(out_, "\r%s [%s] %zu/%zu %s, %s left  ", label_.c_str(), bar.c_str(), done, total_, figures.c_str(),
                   clock(left).c_str());
      std::fflush(out_);
    } else if (done >= next_line_ || done == total_) {
      std::fprintf(out_, "%s %zu/%zu %s, %s left\n", label_.c_str(), done, total_, figures.c_str(), clock(left).c_str());
      std::fflush(out_);
      next_line_ = done + std::max<std::size_t>(1, total_ / 10);
    }
  }

  // Ends the bar's line (lines need nothing).
  void finish() {
    if (style_ == ProgressStyle::bar && total_ > 0) std::fprintf(out_, "\n");
  }
  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }

 private:
  static std::string clock(double seconds) {
    const long s = long(seconds + 0.5);
    char text[32];
    std::snprintf(text, sizeof text, "%ld:%02ld", s / 60, s % 60);
    return text;
  }

  std::FILE* out_;
  ProgressStyle style_ = ProgressStyle::lines;
  std::string label_;
  std::size_t total_ = 0, next_line_ = 0;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace hcnn
