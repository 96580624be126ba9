// moegrad info: what this build is and what it can see, one "key: value" line each, so that
// scripts (scripts/gpu-check.sh) can read it.
#include <cblas.h>
#include <omp.h>

#include <cstdio>
#include <iostream>
#include <sstream>

#include "app/cli.h"
#include "core/device.h"
#ifdef MOEGRAD_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace moegrad::app {
namespace {

#if defined(__clang__)
constexpr const char* kCompiler = "clang " __clang_version__;
#elif defined(__GNUC__)
constexpr const char* kCompiler = "gcc " __VERSION__;
#else
constexpr const char* kCompiler = "unknown";
#endif

po::options_description info_options() {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help and exit");
  return options;
}

void line(const char* key, const std::string& value) {
  std::string label = std::string(key) + ":";
  std::cout << label << std::string(label.size() < 18 ? 18 - label.size() : 1, ' ') << value
            << "\n";
}

#ifdef MOEGRAD_WITH_CUDA
// CUDA versions are encoded as 1000 * major + 10 * minor.
std::string cuda_version_str(int v) {
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}
#endif

void cuda_lines() {
#ifdef MOEGRAD_WITH_CUDA
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  line("cuda built", "yes (runtime " + cuda_version_str(runtime) + ")");
  line("cuda driver", driver ? cuda_version_str(driver) : "none");
  int n = cuda_device_count();
  line("cuda devices", std::to_string(n));
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    char desc[512];  // room for the longest name (256) and the figures after it
    std::snprintf(desc, sizeof desc, "%.256s (sm_%d%d, %.1f GiB, %d SMs)", p.name, p.major, p.minor,
                  double(p.totalGlobalMem) / (1 << 30), p.multiProcessorCount);
    line(("cuda:" + std::to_string(i)).c_str(), desc);
  }
#else
  line("cuda built", "no");
  line("cuda devices", "0");
#endif
}

}  // namespace

std::string info_usage() {
  std::ostringstream os;
  os << "Usage: moegrad info [--help]\n\n"
        "Prints the version, build type, compiler, whether the CUDA backend is built and which\n"
        "CUDA devices it sees, the OpenMP thread count and OpenBLAS's configuration.\n\n"
     << info_options();
  return os.str();
}

int run_info(const Args& args) {
  po::variables_map vm = parse_options("info", info_options(), args);
  if (vm.count("help")) {
    std::cout << info_usage();
    return 0;
  }
  line("moegrad", MOEGRAD_VERSION);
  line("build type", MOEGRAD_BUILD_TYPE);
  line("compiler", kCompiler);
  cuda_lines();
  line("openmp threads", std::to_string(omp_get_max_threads()));
  line("openblas", openblas_get_config());
  line("openblas threads", std::to_string(openblas_get_num_threads()));
  return 0;
}

}  // namespace moegrad::app
