#include "app/model_args.h"

#include <filesystem>

namespace moegrad::app {

void add_model_options(po::options_description& options) {
  options.add_options()("model", po::value<std::string>(),
                        "HF model directory (config.json + safetensors); required")(
      "tokenizer", po::value<std::string>(),
      "tokenizer.json to use (default: the one in the model directory, if any)");
}

std::optional<data::Tokenizer> load_tokenizer(const po::variables_map& vm) {
  if (vm.count("tokenizer")) return data::Tokenizer::from_file(vm["tokenizer"].as<std::string>());
  auto in_model = std::filesystem::path(vm["model"].as<std::string>()) / "tokenizer.json";
  if (std::filesystem::exists(in_model)) return data::Tokenizer::from_file(in_model.string());
  return std::nullopt;
}

std::string required(const po::variables_map& vm, const std::string& command, const char* flag) {
  if (!vm.count(flag)) throw UsageError(command, std::string("--") + flag + " is required");
  return vm[flag].as<std::string>();
}

}  // namespace moegrad::app
