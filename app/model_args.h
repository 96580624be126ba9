// The --model/--tokenizer options that the commands working on a checkpoint share.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "app/cli.h"
#include "data/tokenizer.h"

namespace moegrad::app {

void add_model_options(po::options_description& options);
// The tokenizer named by --tokenizer, else the model directory's tokenizer.json when present.
std::optional<data::Tokenizer> load_tokenizer(const po::variables_map& vm);
std::string required(const po::variables_map& vm, const std::string& command, const char* flag);

}  // namespace moegrad::app
