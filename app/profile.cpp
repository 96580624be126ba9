// moegrad profile: training steps of a config under the op-level profiler, reported as tables
// (by phase, module and op, and per expert), a Chrome trace and the memory peak by category.
#include <filesystem>
#include <iostream>
#include <sstream>

#include "app/cli.h"
#include "app/model_args.h"
#include "core/io/atomic_file.h"
#include "train/profile.h"

namespace moegrad::app {
namespace {

namespace fs = std::filesystem;

po::options_description profile_options() {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help and exit")(
      "config", po::value<std::string>(),
      "experiment config whose [model], [train] (batch, device, freeze) and [data] seq_len are "
      "profiled, on random tokens")(
      "steps", po::value<int64_t>()->default_value(3),
      "profiled steps (as many are first timed without the profiler, for its overhead)")(
      "warmup", po::value<int64_t>()->default_value(2), "untimed steps first")(
      "out", po::value<std::string>(),
      "directory for profile.json, profile.txt and trace.json (created; default: print only)")(
      "top", po::value<size_t>()->default_value(20), "rows shown of each table");
  return options;
}

}  // namespace

std::string profile_usage() {
  std::ostringstream os;
  os << "Usage: moegrad profile --config FILE [--steps N] [--warmup N] [--out DIR] "
        "[--section.key=value ...]\n\n"
        "Runs training steps of the config's model on random tokens with the op-level profiler\n"
        "on: every op and backward, timed by the host clock on the CPU and by CUDA events on a\n"
        "GPU, with its FLOPs and bytes from its shapes and the module and phase it ran under.\n"
        "Prints tables by phase (forward, backward, optimizer, data), by module (layers folded)\n"
        "and by op, with GFLOP/s and GB/s against this device's GEMM and copy rates measured in\n"
        "the same run, the tokens each expert received and its estimated share of the time, and\n"
        "the memory peak by category (weights, gradients, optimizer state, activations, and\n"
        "workspace: the ops' scratch). The ops account for the step up to the printed remainder.\n"
        "With --out: profile.json (every number), profile.txt (the tables) and trace.json (a\n"
        "Chrome trace for Perfetto or chrome://tracing: the host's threads and each GPU's\n"
        "stream as lanes, a memory counter). Config keys can be overridden: --train.device=cuda.\n\n"
     << profile_options();
  return os.str();
}

int run_profile(const Args& args) {
  Args own, overrides;
  split_config_overrides(args, own, overrides);
  const po::variables_map vm = parse_options("profile", profile_options(), own);
  if (vm.count("help")) {
    std::cout << profile_usage();
    return 0;
  }
  const std::string path = required(vm, "profile", "config");
  const train::TrainConfig config = train::load_config(path, overrides, /*check_inputs=*/false);
  const int64_t steps = vm["steps"].as<int64_t>(), warmup = vm["warmup"].as<int64_t>();
  if (steps <= 0) throw UsageError("profile", "--steps must be positive, got " + std::to_string(steps));
  if (warmup < 0) throw UsageError("profile", "--warmup must be >= 0, got " + std::to_string(warmup));

  const train::ProfileRun run = train::run_profile(config, steps, warmup);
  const nlohmann::json summary = train::profile_summary(run);
  const std::string table = train::profile_table(summary, vm["top"].as<size_t>());
  std::cout << table;
  if (vm.count("out")) {
    const fs::path out = vm["out"].as<std::string>();
    fs::create_directories(out);
    write_file_atomically((out / "profile.json").string(), summary.dump(1) + "\n");
    write_file_atomically((out / "profile.txt").string(), table);
    write_file_atomically((out / "trace.json").string(), train::chrome_trace(run.events).dump() + "\n");
    std::cout << "wrote profile.json, profile.txt and trace.json to " << out.string() << "\n";
  }
  return 0;
}

}  // namespace moegrad::app
