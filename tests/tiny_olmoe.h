// The tiny OLMoE that tests build: 2 layers, hidden 16 in 2 heads, experts of width 8.
#pragma once
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

}  // namespace moegrad::testing
