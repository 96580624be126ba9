// moegrad bench: runs one of the Google Benchmark programs built beside this executable
// (<build>/bench/bench_<name>), handing it every argument after the benchmark's name.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "app/cli.h"
#include "core/error.h"

namespace moegrad::app {
namespace {

namespace fs = std::filesystem;

const char* const kBenchmarks[] = {"gemm", "elementwise"};

po::options_description bench_options() {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help and exit");
  return options;
}

bool known_benchmark(const std::string& name) {
  for (const char* b : kBenchmarks) {
    if (name == b) return true;
  }
  return false;
}

// The build tree keeps app/moegrad and bench/bench_<name> side by side.
fs::path benchmark_path(const std::string& name) {
  fs::path self = fs::read_symlink("/proc/self/exe");
  return self.parent_path().parent_path() / "bench" / ("bench_" + name);
}

}  // namespace

std::string bench_usage() {
  std::ostringstream os;
  os << "Usage: moegrad bench [--help] <benchmark> [benchmark arguments...]\n\n"
        "Runs <build>/bench/bench_<benchmark>, a Google Benchmark program, with every argument\n"
        "after <benchmark> (see 'moegrad bench <benchmark> --help'). Benchmarks:";
  for (const char* b : kBenchmarks) os << " " << b;
  os << "\nExample: moegrad bench gemm --benchmark_filter=f32 --benchmark_format=json\n\n"
     << bench_options();
  return os.str();
}

int run_bench(const Args& args) {
  size_t i = 0;
  while (i < args.size() && !args[i].empty() && args[i][0] == '-') ++i;
  po::variables_map vm =
      parse_options("bench", bench_options(), Args(args.begin(), args.begin() + i));
  if (vm.count("help")) {
    std::cout << bench_usage();
    return 0;
  }
  if (i == args.size()) throw UsageError("bench", "missing benchmark name");
  const std::string& name = args[i];
  if (!known_benchmark(name)) throw UsageError("bench", "unknown benchmark '" + name + "'");

  fs::path path = benchmark_path(name);
  MOEGRAD_CHECK(fs::exists(path), "bench: ", path.string(),
                " is not built; configure with -DMOEGRAD_BENCH=ON (needs libbenchmark-dev) and "
                "build it: cmake --build <build> --target bench_",
                name);
  std::vector<std::string> argv_strings{path.string()};
  argv_strings.insert(argv_strings.end(), args.begin() + i + 1, args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::cout.flush();
  execv(argv[0], argv.data());
  throw Error("bench: cannot run " + path.string() + ": " + std::strerror(errno));
}

}  // namespace moegrad::app
