// Plumbing shared by the moegrad subcommands: usage errors, option parsing and the commands.
#pragma once
#include <boost/program_options.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/device.h"

namespace moegrad::app {

namespace po = boost::program_options;

using Args = std::vector<std::string>;

// A mistake in how moegrad was called. main prints it with the command's usage and exits 2,
// which tells it apart from a failure while running (exit 1).
class UsageError : public std::runtime_error {
 public:
  UsageError(std::string command, const std::string& message)
      : std::runtime_error(message), command_(std::move(command)) {}
  const std::string& command() const { return command_; }  // empty for moegrad itself

 private:
  std::string command_;
};

// Parses `args` against `options`; arguments that are not options are refused. Every
// problem (unknown flag, bad value, stray argument) becomes a UsageError naming the flag.
po::variables_map parse_options(const std::string& command, const po::options_description& options,
                                const Args& args);

// --device D, default auto: cpu, cuda, cuda:N, or auto (the first CUDA device when one is
// present, else the CPU).
void add_device_option(po::options_description& options);
// The device --device names, for a command to pick before it loads anything: a value that is no
// device name is a UsageError naming the flag; a CUDA device the machine lacks is an Error that
// says how many it has.
Device selected_device(const std::string& command, const po::variables_map& vm);

// Splits config key overrides ("--train.lr=1e-4" or "--train.lr 1e-4") from a command's own
// arguments.
void split_config_overrides(const Args& args, Args& own, Args& overrides);

// A number in a CSV table (%.6g); empty where it is not finite (an undefined correlation, an
// accuracy over nothing scored), which CSV readers take for a missing value.
std::string csv_number(double x);

// A command with subcommands (moegrad data build, ...): each its name, a line on what it does,
// and its runner, which gets the arguments after its name.
struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(const Args& args);
};
// The subcommands as a usage table.
std::string subcommand_table(const std::vector<Subcommand>& subcommands);
// Runs the subcommand args[0] names; --help prints `usage`; none or an unknown one is a
// UsageError listing them.
int run_subcommand(const std::string& command, const std::vector<Subcommand>& subcommands,
                   const Args& args, const std::string& usage);

// One subcommand: `run` gets the arguments after its name and returns the exit status;
// `usage` is what `moegrad <name> --help` prints.
struct Command {
  const char* name;
  const char* summary;
  int (*run)(const Args& args);
  std::string (*usage)();
};

int run_info(const Args& args);
std::string info_usage();
int run_demo(const Args& args);
std::string demo_usage();
int run_bench(const Args& args);
std::string bench_usage();
int run_inspect(const Args& args);
std::string inspect_usage();
int run_score(const Args& args);
std::string score_usage();
int run_generate(const Args& args);
std::string generate_usage();
int run_data(const Args& args);
std::string data_usage();
int run_train(const Args& args);
std::string train_usage();
int run_adapt(const Args& args);
std::string adapt_usage();
int run_analyze(const Args& args);
std::string analyze_usage();
int run_trace(const Args& args);
std::string trace_usage();
int run_profile(const Args& args);
std::string profile_usage();
int run_benchmark(const Args& args);
std::string benchmark_usage();
int run_eval(const Args& args);  // benchmark run
std::string eval_usage();
int run_pipeline(const Args& args);
std::string pipeline_usage();

// The command called `name`, or null.
const Command* find_command(const std::string& name);

}  // namespace moegrad::app
