// The tiny OLMoE that tests build: 2 layers, hidden 16 in 2 heads, experts of width 8.
#pragma once
#include <memory>

#include "core/random.h"
#include "moe/olmoe.h"
#include "nn/olmoe_config.h"

namespace moegrad::testing {

inline OlmoeConfig tiny_olmoe_config(int64_t vocab_size, int64_t num_experts, int64_t top_k,
                                     int64_t max_positions) {
  OlmoeConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = 16;
  c.intermediate_size = 8;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.num_experts = num_experts;
  c.num_experts_per_tok = top_k;
  c.max_position_embeddings = max_positions;
  return c;
}

// A model of config c initialised from gen (which then goes on for the test's own draws).
inline std::unique_ptr<OlmoeForCausalLM> tiny_olmoe(const OlmoeConfig& c, Generator& gen) {
  InitOptions init;
  init.gen = &gen;
  return std::make_unique<OlmoeForCausalLM>(c, init);
}

}  // namespace moegrad::testing
