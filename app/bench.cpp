// moegrad bench: runs one of the Google Benchmark programs built beside this executable
// (<build>/bench/bench_<name>), handing it every argument after the benchmark's name.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "app/cli.h"
#include "core/error.h"
#include "train/benchmark.h"

namespace moegrad::app {
namespace {

namespace fs = std::filesystem;

const char* const kBenchmarks[] = {"gemm", "elementwise", "attention", "host"};

po::options_description bench_options() {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help and exit")(
      "config", po::value<std::string>(),
      "training benchmark: full training steps of this experiment config's [model] on random "
      "tokens (batch and sequence length from [train] and [data])")(
      "steps", po::value<int64_t>()->default_value(5), "training benchmark: timed steps")(
      "warmup", po::value<int64_t>()->default_value(2), "training benchmark: untimed steps first")(
      "inference", po::bool_switch(),
      "training benchmark: afterwards, the peak memory of the same model running one micro-batch "
      "forward without gradients, and the training peak's ratio to it");
  return options;
}

int run_training_benchmark(const po::variables_map& vm, const Args& overrides) {
  const train::TrainConfig config =
      train::load_config(vm["config"].as<std::string>(), overrides, /*check_inputs=*/false);
  const OlmoeConfig& m = config.model.config;
  std::cout << "config: " << config.source << " (hidden " << m.hidden_size << ", "
            << m.num_hidden_layers << " layers, " << m.num_experts << " experts top-"
            << m.num_experts_per_tok << ", expert width " << m.intermediate_size << ", vocab "
            << m.vocab_size << ", " << config.train.grad_accum * config.train.batch_size << " x "
            << config.data.seq_len << " tokens per step)\n"
            << "active parameters per token: " << train::active_parameters(m) << "\n";
  const train::BenchmarkResult r = train::run_training_benchmark(
      config, vm["steps"].as<int64_t>(), vm["warmup"].as<int64_t>());
  std::cout << "seconds per step (median of " << r.steps << "): " << r.seconds_per_step << "\n"
            << "achieved: " << r.gflops << " GFLOP/s (6 x active params x tokens + attention)\n"
            << dtype_name(config.train.dtype()) << " GEMM rate of "
            << Device::select(config.train.device).str()
            << ", same run: " << r.gemm_gflops << " GFLOP/s\n"
            << "ratio to GEMM: " << r.gemm_ratio() << "\n"
            << "peak memory: " << memory_breakdown(r.memory.at_peak) << "\n";
  if (Device::select(config.train.device).is_cuda())
    std::cout << "over the timed steps: " << r.driver_allocations << " cudaMalloc calls, "
              << r.cache_releases << " cache releases, " << r.host_waits
              << " host waits for the device\n";
  if (vm["inference"].as<bool>()) {
    const MemoryReport inference = train::inference_memory(config);
    std::cout << "inference peak memory (one micro-batch, no gradients): "
              << memory_breakdown(inference.at_peak) << "\n"
              << "training peak / inference peak: "
              << double(r.memory.peak_total) / double(std::max<int64_t>(inference.peak_total, 1))
              << "\n";
  }
  std::cout << "tokens_per_s=" << r.tokens_per_s << "\n";
  return 0;
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
  os << "Usage: moegrad bench --config FILE [--steps N] [--warmup N]\n"
        "       moegrad bench [--help] <benchmark> [benchmark arguments...]\n\n"
        "With --config: full training steps (forward, backward, AdamW) of the config's model\n"
        "on random tokens; prints tokens/s, achieved GFLOP/s and its ratio to this machine's\n"
        "GEMM rate in the run's precision (train.precision: f32 or bf16) measured in the same\n"
        "run; the last line is tokens_per_s=<number>. Config keys can be overridden:\n"
        "--train.precision=bf16 --train.device=cuda.\n\n"
        "Otherwise: "
        "Runs <build>/bench/bench_<benchmark>, a Google Benchmark program, with every argument\n"
        "after <benchmark> (see 'moegrad bench <benchmark> --help'). Benchmarks:";
  for (const char* b : kBenchmarks) os << " " << b;
  os << "\nExample: moegrad bench gemm --benchmark_filter=f32 --benchmark_format=json\n\n"
     << bench_options();
  return os.str();
}

int run_bench(const Args& args) {
  for (const std::string& a : args)
    if (a == "--config" || a.rfind("--config=", 0) == 0) {
      Args own, overrides;
      split_config_overrides(args, own, overrides);
      po::variables_map vm = parse_options("bench", bench_options(), own);
      return vm.count("help") ? (std::cout << bench_usage(), 0)
                              : run_training_benchmark(vm, overrides);
    }
  // Otherwise everything after the benchmark's name is the benchmark program's.
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
