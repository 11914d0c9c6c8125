// hcnn/backend/cpu/simd.hpp — which SIMD instructions this program was compiled for, which the
// CPU offers, and one warning when the two differ.
//
// hcnn is header-only, so Eigen's kernels are compiled with the *user's* flags: without
// -march=native (or -mavx2 -mfma, ...) g++ targets SSE2 and the convolutions run 2-3x slower
// than the CPU allows. hcnn's own targets build for the machine they run on (CMake option
// HCNN_NATIVE); for other programs this check says so once, on stderr, when the first CPU
// model is made. HCNN_NO_SIMD_WARNING=1 in the environment silences it.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace hcnn::cpu {

// The widest vector instruction set the compiler was allowed to use.
[[nodiscard]] constexpr const char* compiled_simd() {
#if defined(__AVX512F__)
  return "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "AVX2+FMA";
#elif defined(__AVX__)
  return "AVX";
#elif defined(__SSE2__)
  return "SSE2";
#else
  return "no SIMD";
#endif
}

// The widest of the same sets this CPU supports.
[[nodiscard]] inline const char* cpu_simd() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "AVX-512";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "AVX2+FMA";
  if (__builtin_cpu_supports("avx")) return "AVX";
  if (__builtin_cpu_supports("sse2")) return "SSE2";
#endif
  return compiled_simd();
}

// The CPU's model name (from /proc/cpuinfo on Linux), for benchmarks that must name their CPU.
// The CPU's model name with its family and model numbers, from /proc/cpuinfo: virtual
// machines often name only the vendor ("Intel(R) Xeon(R) Processor"), and the numbers still
// tell Cascade Lake (6/85) from Emerald Rapids (6/207), or Zen 3 (25/1) from Zen 5 (26/2).
inline std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string name = "unknown CPU", family, model;
  auto value = [](const std::string& line) { return line.substr(line.find(':') + 2); };
  // The first processor's block, which ends at the first line without a colon.
  for (std::string line; std::getline(in, line) && line.find(':') != std::string::npos;) {
    if (line.rfind("model name", 0) == 0) name = value(line);
    else if (line.rfind("cpu family", 0) == 0) family = value(line);
    else if (line.rfind("model", 0) == 0 && line.rfind("model name", 0) != 0) model = value(line);
  }
  if (!family.empty() && !model.empty()) name += " (family " + family + " model " + model + ")";
  return name;
}

inline void warn_if_compiled_below_cpu() {
  static const bool warned = [] {
    const std::string compiled = compiled_simd(), available = cpu_simd();
    const char* quiet = std::getenv("HCNN_NO_SIMD_WARNING");
    if (compiled != available && (quiet == nullptr || std::string(quiet) != "1"))
      std::fprintf(stderr,
                   "hcnn: this program was compiled for %s, but this CPU offers %s: the CPU layers run several times "
                   "slower than they could. Build with -march=native (hcnn's CMake option HCNN_NATIVE, or your own "
                   "flags); HCNN_NO_SIMD_WARNING=1 silences this.\n",
                   compiled.c_str(), available.c_str());
    return true;
  }();
  (void)warned;
}

}  // namespace hcnn::cpu
