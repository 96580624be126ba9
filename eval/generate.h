// Text generation from a prompt: greedy, or sampled with temperature and top-k.
#pragma once
#include <cstdint>
#include <vector>

#include "moe/olmoe.h"

namespace moegrad {

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  double temperature = 1.0;  // 0: greedy (argmax)
  int64_t top_k = 0;         // 0: all tokens
  uint64_t seed = 0;         // sampling is deterministic for a seed
  // Only ids below this are produced (0: the model's vocab). Set it to the tokenizer's size:
  // embeddings are padded past the real vocabulary (OLMoE: 50304 rows, 50280 tokens) and a
  // padding id decodes to nothing.
  int64_t vocab_limit = 0;
};

// The prompt followed by up to max_new_tokens tokens; stops after the EOS id. Each step runs
// the whole sequence again (there is no KV cache yet), which is fine for short outputs.
std::vector<int32_t> generate(const OlmoeForCausalLM& model, std::vector<int32_t> prompt,
                              const GenerateOptions& options);

}  // namespace moegrad
