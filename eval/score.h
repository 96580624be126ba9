// Scoring text under a model: the log-probability of each token given everything before it.
// The primitive that benchmark scoring (MultiBLiMP pairs, Belebele choices, perplexity) uses.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "moe/olmoe.h"

namespace moegrad {

struct ScoreResult {
  std::vector<int32_t> tokens;
  std::vector<double> token_logprobs;  // log p(tokens[i] | context, tokens[:i])
  double logprob = 0;                  // their sum
};

// Scores `tokens` after `context`, which conditions but is not scored. An empty context
// becomes the model's BOS id, or its EOS id when it has none (OLMoE has no BOS).
ScoreResult score_tokens(const OlmoeForCausalLM& model, const std::vector<int32_t>& context,
                         const std::vector<int32_t>& tokens);

// Scores every line of the JSONL file `in_path` into `out_path` (written atomically), one
// output line per input line. An input line is {"text": "..."} or {"tokens": [ids]}, with an
// optional "prefix" (text or ids) that conditions but is not scored; an output line is
// {"logprob": sum, "tokens": [...], "token_logprobs": [...]}. Text needs `tokenizer`. A bad
// line is an error naming the file, the line and the field.
void score_jsonl(const OlmoeForCausalLM& model, const data::Tokenizer* tokenizer,
                 const std::string& in_path, const std::string& out_path);

}  // namespace moegrad
