#include "eval/score.h"

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "autograd/grad_mode.h"
#include "core/io/atomic_file.h"
#include "core/io/json_reader.h"
#include "core/ops/index.h"
#include "core/ops/softmax.h"

namespace moegrad {
namespace {

using json = nlohmann::json;

int32_t default_context(const OlmoeConfig& c) {
  std::optional<int64_t> id = c.bos_token_id ? c.bos_token_id : c.eos_token_id;
  MOEGRAD_CHECK(id.has_value(), "score: the model has neither a BOS nor an EOS id to condition the "
                                "first token on; give a prefix");
  return int32_t(*id);
}

// Reads "tokens"/"text"/"prefix" of one line: ids, or text encoded with the tokenizer.
std::vector<int32_t> read_ids(const json& field, const data::Tokenizer* tokenizer, const std::string& where,
                              const char* name) {
  if (field.is_string()) {
    MOEGRAD_CHECK(tokenizer != nullptr, where, ": \"", name, "\" is text, which needs a tokenizer.json "
                  "in the model directory (or --tokenizer)");
    return tokenizer->encode(field.get<std::string>());
  }
  MOEGRAD_CHECK(field.is_array(), where, ": \"", name, "\" must be a string or an array of token ids");
  std::vector<int32_t> ids;
  for (const json& v : field) {
    // An id past int32 would wrap into the vocabulary (2^32 + 1 read as 1) and score a wrong token.
    const std::optional<int64_t> id = json_int64(v);
    MOEGRAD_CHECK(id && *id >= 0 && *id <= std::numeric_limits<int32_t>::max(), where, ": \"", name, "\" must hold token ids (integers from 0 to 2^31 - 1), found ",
                  v.dump());
    ids.push_back(int32_t(*id));
  }
  return ids;
}

}  // namespace

ScoreResult score_tokens(const OlmoeForCausalLM& model, const std::vector<int32_t>& context,
                         const std::vector<int32_t>& tokens) {
  const OlmoeConfig& c = model.config();
  std::vector<int64_t> ids;
  if (context.empty()) ids.push_back(default_context(c));
  ids.insert(ids.end(), context.begin(), context.end());
  const int64_t first = int64_t(ids.size());
  ids.insert(ids.end(), tokens.begin(), tokens.end());
  for (int64_t id : ids)
    MOEGRAD_CHECK(id >= 0 && id < c.vocab_size, "score: token id ", id, " is out of range [0, ",
                  c.vocab_size, ")");
  ScoreResult r;
  r.tokens = tokens;
  if (tokens.empty()) return r;

  NoGradGuard no_grad;
  const int64_t n = int64_t(tokens.size());
  const Device device = model.device();
  Tensor logits =
      model.forward(from_vector<int64_t>(ids, {1, int64_t(ids.size())}).to(device)).hidden.data();
  // Position p predicts token p + 1: rows first-1 .. first+n-2 score the n tokens.
  Tensor rows = logits.select(0, 0).narrow(0, first - 1, n);
  std::vector<int64_t> targets(tokens.begin(), tokens.end());
  Tensor picked =
      gather(log_softmax(rows, -1), 1, from_vector<int64_t>(targets, {n, 1}).to(device));
  r.token_logprobs = picked.to_vector<double>();
  for (double lp : r.token_logprobs) r.logprob += lp;
  return r;
}

void score_jsonl(const OlmoeForCausalLM& model, const data::Tokenizer* tokenizer,
                 const std::string& in_path, const std::string& out_path) {
  std::ifstream in(in_path);
  MOEGRAD_CHECK(in.good(), "score: cannot open ", in_path);
  std::string line, out;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = in_path + ":" + std::to_string(number);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      throw Error(where + ": invalid JSON: " + e.what());
    }
    MOEGRAD_CHECK(j.is_object(), where, ": expected an object like {\"text\": ...}");
    MOEGRAD_CHECK(j.contains("text") != j.contains("tokens"), where,
                  ": expected exactly one of \"text\" and \"tokens\"");
    for (const auto& [key, value] : j.items())
      MOEGRAD_CHECK(key == "text" || key == "tokens" || key == "prefix", where, ": unknown field \"", key,
                    "\" (expected text, tokens, prefix)");
    const char* name = j.contains("text") ? "text" : "tokens";
    std::vector<int32_t> tokens = read_ids(j[name], tokenizer, where, name);
    std::vector<int32_t> context = j.contains("prefix") ? read_ids(j["prefix"], tokenizer, where, "prefix")
                                                        : std::vector<int32_t>{};
    ScoreResult r;
    try {
      r = score_tokens(model, context, tokens);
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
    out += json{{"logprob", r.logprob}, {"tokens", r.tokens}, {"token_logprobs", r.token_logprobs}}.dump() + "\n";
  }
  AtomicFile file(out_path);
  file.write(out.data(), out.size());
  file.commit();
}

}  // namespace moegrad
