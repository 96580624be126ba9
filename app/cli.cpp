#include "app/cli.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

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

void add_device_option(po::options_description& options) {
  options.add_options()("device", po::value<std::string>()->default_value("auto")->value_name("D"),
                        "cpu, cuda, cuda:N, or auto (cuda when a device is present, else cpu)");
}

Device selected_device(const std::string& command, const po::variables_map& vm) {
  const std::string name = vm["device"].as<std::string>();
  if (name != "auto") {
    try {
      Device::parse(name);
    } catch (const std::exception&) {
      throw UsageError(command, "invalid value '" + name +
                                    "' for option '--device': expected cpu, cuda, cuda:N or auto");
    }
  }
  return Device::select(name);
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

std::string subcommand_table(const std::vector<Subcommand>& subcommands) {
  size_t width = 0;
  for (const Subcommand& s : subcommands) width = std::max(width, std::string(s.name).size());
  std::string out;
  for (const Subcommand& s : subcommands)
    out += "  " + std::string(s.name) + std::string(width + 2 - std::string(s.name).size(), ' ') +
           s.summary + "\n";
  return out;
}

int run_subcommand(const std::string& command, const std::vector<Subcommand>& subcommands,
                   const Args& args, const std::string& usage) {
  std::string names;
  for (size_t i = 0; i < subcommands.size(); ++i)
    names += (i == 0 ? "" : i + 1 == subcommands.size() ? " or " : ", ") +
             std::string(subcommands[i].name);
  if (args.empty()) throw UsageError(command, "missing subcommand (" + names + ")");
  if (args[0] == "--help" || args[0] == "-h") {
    std::cout << usage;
    return 0;
  }
  for (const Subcommand& s : subcommands)
    if (args[0] == s.name) return s.run(Args(args.begin() + 1, args.end()));
  throw UsageError(command, "unknown subcommand '" + args[0] + "' (expected " + names + ")");
}

std::string csv_number(double x) {
  if (!std::isfinite(x)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

}  // namespace moegrad::app
