// OlmoeConfig: the HF config.json of an OLMoE model. Absent fields take the defaults of
// transformers' OlmoeConfig (which differ from the released model: always read config.json).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace moegrad {

struct OlmoeConfig {
  int64_t vocab_size = 50304;
  int64_t hidden_size = 2048;
  int64_t intermediate_size = 2048;  // per expert
  int64_t num_hidden_layers = 16;
  int64_t num_attention_heads = 16;
  int64_t num_key_value_heads = 16;  // HF: null means num_attention_heads
  int64_t num_experts = 64;
  int64_t num_experts_per_tok = 8;
  bool norm_topk_prob = false;
  double rope_theta = 10000.0;
  int64_t max_position_embeddings = 4096;
  double rms_norm_eps = 1e-5;
  std::optional<double> clip_qkv;
  double router_aux_loss_coef = 0.01;
  bool output_router_logits = false;
  double initializer_range = 0.02;
  std::optional<int64_t> eos_token_id = 50279;
  std::optional<int64_t> pad_token_id = 1;
  std::optional<int64_t> bos_token_id;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  // Throws naming `source` and the first inconsistent field.
  void validate(const std::string& source = "OlmoeConfig") const;

  // Unknown fields (neither OlmoeConfig's nor a generic PretrainedConfig field), a
  // model_type other than "olmoe", a wrong JSON type or an unsupported value (hidden_act
  // other than silu, attention_bias, tied embeddings, rope scaling) are errors naming
  // `source` and the field.
  static OlmoeConfig from_json_string(const std::string& text,
                                      const std::string& source = "<config>");
  static OlmoeConfig load(const std::string& path);
  std::string to_json_string() const;  // with model_type, architectures and fixed fields
  void save(const std::string& path) const;
};

}  // namespace moegrad
