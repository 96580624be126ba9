// OLMoE self-attention: q/k/v projections, QK-norm over the full projected width (before the
// split into heads and before RoPE), optional clip_qkv, RoPE, causal grouped-query SDPA, o_proj.
#pragma once
#include <memory>
#include <optional>

#include "nn/linear.h"
#include "nn/olmoe_config.h"
#include "nn/rmsnorm.h"
#include "nn/rotary.h"

namespace moegrad {

class OlmoeAttention : public Module {
 public:
  OlmoeAttention(const OlmoeConfig& config, const InitOptions& init = {});
  // x: [B, T, H] -> [B, T, H]; positions int [T] (0..T-1 when undefined).
  Variable forward(const Variable& x, const Tensor& positions = Tensor()) const;

  Linear& q_proj() const { return *q_proj_; }
  Linear& k_proj() const { return *k_proj_; }
  Linear& v_proj() const { return *v_proj_; }
  Linear& o_proj() const { return *o_proj_; }
  RMSNorm& q_norm() const { return *q_norm_; }
  RMSNorm& k_norm() const { return *k_norm_; }

 private:
  int64_t num_heads_, num_kv_heads_, head_dim_;
  std::optional<double> clip_qkv_;
  RotaryEmbedding rotary_;
  std::shared_ptr<Linear> q_proj_, k_proj_, v_proj_, o_proj_;
  std::shared_ptr<RMSNorm> q_norm_, k_norm_;
};

}  // namespace moegrad
