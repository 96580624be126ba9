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

void split_config_overrides(const Args& args, Args& own, Args& overrides) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool is_key = a.rfind("--", 0) == 0 && a.find('.') != std::string::npos &&
                        a.find('.') < a.find('=');
    if (!is_key) {
      own.push_back(a);
      continue;
    }
    overrides.push_back(a);
    // "--train.lr 1e-4": the value is the next argument.
    if (a.find('=') == std::string::npos && i + 1 < args.size()) overrides.push_back(args[++i]);
  }
}

}  // namespace moegrad::app
