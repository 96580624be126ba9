// moegrad generate: continue a prompt, greedily or by sampling.
#include <iostream>
#include <sstream>

#include "app/model_args.h"
#include "eval/generate.h"
#include "moe/checkpoint.h"

namespace moegrad::app {
namespace {

po::options_description generate_options() {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help and exit");
  add_model_options(options);
  options.add_options()("prompt", po::value<std::string>(), "text to continue; required")(
      "max-new-tokens", po::value<int64_t>()->default_value(32), "most tokens to add")(
      "temperature", po::value<double>()->default_value(1.0), "sampling temperature; 0 = greedy")(
      "top-k", po::value<int64_t>()->default_value(0), "sample among the k likeliest tokens; 0 = all")(
      "seed", po::value<uint64_t>()->default_value(0), "random seed (same seed, same output)");
  add_device_option(options);
  return options;
}

}  // namespace

std::string generate_usage() {
  std::ostringstream os;
  os << "Usage: moegrad generate --model DIR --prompt TEXT [--max-new-tokens N] [--temperature T]\n"
        "                        [--top-k K] [--seed S] [--device D]\n\n"
        "Prints the prompt and its continuation (stopping after the EOS token).\n\n"
     << generate_options();
  return os.str();
}

int run_generate(const Args& args) {
  po::variables_map vm = parse_options("generate", generate_options(), args);
  if (vm.count("help")) {
    std::cout << generate_usage();
    return 0;
  }
  std::string model_dir = required(vm, "generate", "model");
  std::string prompt = required(vm, "generate", "prompt");
  GenerateOptions o;
  o.max_new_tokens = vm["max-new-tokens"].as<int64_t>();
  o.temperature = vm["temperature"].as<double>();
  o.top_k = vm["top-k"].as<int64_t>();
  o.seed = vm["seed"].as<uint64_t>();
  if (o.max_new_tokens < 0) throw UsageError("generate", "--max-new-tokens must be >= 0");
  if (o.temperature < 0) throw UsageError("generate", "--temperature must be >= 0");
  if (o.top_k < 0) throw UsageError("generate", "--top-k must be >= 0");
  const Device device = selected_device("generate", vm);
  auto model = load_olmoe(model_dir);
  model->to(device);
  std::optional<data::Tokenizer> tokenizer = load_tokenizer(vm);
  if (!tokenizer)
    throw Error("generate: " + model_dir + " has no tokenizer.json; pass --tokenizer FILE");
  o.vocab_limit = tokenizer->vocab_size();
  std::vector<int32_t> ids = generate(*model, tokenizer->encode(prompt), o);
  std::cout << tokenizer->decode(ids) << "\n";
  return 0;
}

}  // namespace moegrad::app
