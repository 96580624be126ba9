// Paths and readers of the HF tokenizers reference outputs (tests/reference/tokenizer/, made by
// tests/reference/make_tokenizer_fixtures.py).
#pragma once
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace moegrad::testing {

inline std::filesystem::path tokenizer_fixture(const std::string& name) {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "reference" / "tokenizer" / name;
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json tokenizer_fixture_json(const std::string& name) {
  return nlohmann::json::parse(read_text(tokenizer_fixture(name)));
}

}  // namespace moegrad::testing
