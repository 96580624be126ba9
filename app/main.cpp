// moegrad: the command-line entry point. Options before the command name are moegrad's own
// (--help, --version); everything after it belongs to the command.
#include <exception>
#include <iostream>
#include <new>
#include <sstream>

#include "app/cli.h"
#include "core/error.h"

namespace moegrad::app {
namespace {

const Command kCommands[] = {
    {"info", "show the build (type, CUDA, OpenMP, OpenBLAS) and the CUDA devices present", run_info,
     info_usage},
    {"demo", "fit a linear model by gradient descent with moegrad's autograd", run_demo,
     demo_usage},
    {"bench",
     "training steps of a config, or a benchmark program (gemm, elementwise, attention, host)",
     run_bench, bench_usage},
    {"inspect", "parameter counts of an OLMoE checkpoint: total, active per token, by kind and layer",
     run_inspect, inspect_usage},
    {"score", "log-probability of each token of JSONL inputs under a model", run_score, score_usage},
    {"generate", "continue a prompt, greedily or by sampling", run_generate, generate_usage},
    {"data", "build token shards, train a tokenizer, inspect shards", run_data, data_usage},
    {"train", "train or continue an OLMoE model from an experiment config", run_train,
     train_usage},
    {"adapt", "selective adaptation: train the experts a routing analysis picks for a language",
     run_adapt, adapt_usage},
    {"analyze", "routing statistics of a model on held-out shards: usage, entropy, divergence, "
     "specialised and shared experts", run_analyze, analyze_usage},
    {"trace", "the experts each token of a text is routed to, layer by layer", run_trace,
     trace_usage},
    {"benchmark", "MultiBLiMP, Belebele and held-out perplexity per language; proxy sets from "
     "held-out text", run_benchmark, benchmark_usage},
    {"eval", "score a model on benchmarks, optionally with router steering (= benchmark run)",
     run_eval, eval_usage},
    {"profile", "where a training step's time and memory go: by op, module, phase and expert",
     run_profile, profile_usage},
    {"run", "a whole experiment from one config: data, pretraining, continual pre-training, "
     "routing analysis, selective adaptation, benchmarks, steering, profile, report.md",
     run_pipeline, pipeline_usage},
};

po::options_description global_options() {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help and exit")("version",
                                                             "print the version and exit");
  return options;
}

std::string global_usage() {
  std::ostringstream os;
  os << "moegrad " MOEGRAD_VERSION
        ": a from-scratch C++/CUDA training framework for Mixture-of-Experts models\n\n"
        "Usage: moegrad [--help | --version] <command> [options]\n\nCommands:\n";
  for (const Command& c : kCommands) {
    os << "  " << c.name << std::string(10 - std::string(c.name).size(), ' ') << c.summary << "\n";
  }
  os << "\n" << global_options() << "\nRun 'moegrad <command> --help' for a command's options.\n";
  return os.str();
}

int run(const Args& args) {
  // The command is the first argument that is not an option.
  size_t i = 0;
  while (i < args.size() && !args[i].empty() && args[i][0] == '-') ++i;
  Args own(args.begin(), args.begin() + i);
  po::variables_map vm = parse_options("", global_options(), own);
  if (vm.count("help")) {
    std::cout << global_usage();
    return 0;
  }
  if (vm.count("version")) {
    std::cout << "moegrad " MOEGRAD_VERSION "\n";
    return 0;
  }
  if (i == args.size()) throw UsageError("", "missing command");
  const Command* command = find_command(args[i]);
  if (!command) throw UsageError("", "unknown command '" + args[i] + "'");
  return command->run(Args(args.begin() + i + 1, args.end()));
}

}  // namespace

const Command* find_command(const std::string& name) {
  for (const Command& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

}  // namespace moegrad::app

int main(int argc, char** argv) {
  using namespace moegrad::app;
  try {
    return run(Args(argv + 1, argv + argc));
  } catch (const UsageError& e) {
    const Command* command = find_command(e.command());
    std::string name = command ? "moegrad " + e.command() : "moegrad";
    std::cerr << name << ": " << e.what() << "\n\n"
              << (command ? command->usage() : global_usage());
    return 2;
  } catch (const std::bad_alloc&) {
    // Tensors report their own out-of-memory errors; this is a host container, sized by a
    // count from a config or a flag (e.g. train.grad_accum = 2147483648).
    std::cerr << "moegrad: error: out of host memory (std::bad_alloc): a count in the config or "
                 "the flags is likely far too large\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "moegrad: error: " << e.what() << "\n";
    return 1;
  }
}
