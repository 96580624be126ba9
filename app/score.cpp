// moegrad score: per-token log-probabilities of JSONL inputs under a model.
#include <iostream>
#include <sstream>

#include "app/model_args.h"
#include "eval/score.h"
#include "moe/checkpoint.h"

namespace moegrad::app {
namespace {

po::options_description score_options() {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help and exit");
  add_model_options(options);
  options.add_options()("input", po::value<std::string>(), "JSONL file to score; required")(
      "out", po::value<std::string>(), "JSONL file to write (atomically); required");
  add_device_option(options);
  return options;
}

}  // namespace

std::string score_usage() {
  std::ostringstream os;
  os << "Usage: moegrad score --model DIR --input FILE.jsonl --out FILE.jsonl [--device D]\n\n"
        "Each input line is {\"text\": \"...\"} or {\"tokens\": [ids]}, with an optional \"prefix\"\n"
        "(text or ids) that conditions but is not scored; without one, the first token is\n"
        "conditioned on the BOS id, or EOS when the model has no BOS. Each output line is\n"
        "{\"logprob\": sum, \"tokens\": [...], \"token_logprobs\": [...]}.\n\n"
     << score_options();
  return os.str();
}

int run_score(const Args& args) {
  po::variables_map vm = parse_options("score", score_options(), args);
  if (vm.count("help")) {
    std::cout << score_usage();
    return 0;
  }
  std::string model_dir = required(vm, "score", "model");
  std::string input = required(vm, "score", "input"), out = required(vm, "score", "out");
  const Device device = selected_device("score", vm);
  auto model = load_olmoe(model_dir);
  model->to(device);
  std::optional<data::Tokenizer> tokenizer = load_tokenizer(vm);
  score_jsonl(*model, tokenizer ? &*tokenizer : nullptr, input, out);
  return 0;
}

}  // namespace moegrad::app
