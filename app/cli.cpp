#include "app/cli.h"

namespace moegrad::app {

po::variables_map parse_options(const std::string& command, const po::options_description& options,
                                const Args& args) {
  // Stray arguments are collected rather than left to program_options, whose own message
  // ("too many positional options") would not say which argument was wrong.
  po::options_description all;
  all.add(options).add_options()("stray-argument", po::value<Args>());
  po::positional_options_description positional;
  positional.add("stray-argument", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(command, e.what());
  }
  if (vm.count("stray-argument")) {
    throw UsageError(command,
                     "unexpected argument '" + vm["stray-argument"].as<Args>().front() + "'");
  }
  return vm;
}

}  // namespace moegrad::app
