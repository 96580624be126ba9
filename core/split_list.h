// Lists as configs and command-line flags write them ("en, de,fr"), for every layer that reads
// one: the train config, the pipeline, the routing analysis's parents, the CLI.
#pragma once
#include <string>
#include <vector>

namespace moegrad {

// `text` split at `sep`, each item trimmed of spaces and tabs, empty items dropped.
std::vector<std::string> split_list(const std::string& text, char sep);

}  // namespace moegrad
