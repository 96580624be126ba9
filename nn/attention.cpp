#include "nn/attention.h"

#include "autograd/ops.h"
#include "core/error.h"
#include "core/profiler.h"

namespace moegrad {

OlmoeAttention::OlmoeAttention(const OlmoeConfig& c, const InitOptions& init)
    : num_heads_(c.num_attention_heads),
      num_kv_heads_(c.num_key_value_heads),
      head_dim_(c.head_dim()),
      clip_qkv_(c.clip_qkv),
      rotary_(c.head_dim(), c.rope_theta) {
  c.validate();
  const int64_t h = c.hidden_size, kv = num_kv_heads_ * head_dim_;
  // Registration order is HF's state-dict order.
  q_proj_ = register_module("q_proj", std::make_shared<Linear>(h, num_heads_ * head_dim_, init));
  k_proj_ = register_module("k_proj", std::make_shared<Linear>(h, kv, init));
  v_proj_ = register_module("v_proj", std::make_shared<Linear>(h, kv, init));
  o_proj_ = register_module("o_proj", std::make_shared<Linear>(num_heads_ * head_dim_, h, init));
  q_norm_ = register_module(
      "q_norm", std::make_shared<RMSNorm>(num_heads_ * head_dim_, c.rms_norm_eps, init.dtype));
  k_norm_ = register_module("k_norm", std::make_shared<RMSNorm>(kv, c.rms_norm_eps, init.dtype));
}

Variable OlmoeAttention::forward(const Variable& x, const Tensor& positions) const {
  profiler::ModuleScope scope(this);
  MOEGRAD_CHECK(x.dim() == 3, "OlmoeAttention: input must be [B, T, H], got ",
                shape_str(x.shape()));
  const int64_t b = x.size(0), t = x.size(1);
  Variable q = q_norm_->forward(q_proj_->forward(x));
  Variable k = k_norm_->forward(k_proj_->forward(x));
  Variable v = v_proj_->forward(x);
  if (clip_qkv_) {
    q = clamp(q, -*clip_qkv_, *clip_qkv_);
    k = clamp(k, -*clip_qkv_, *clip_qkv_);
    v = clamp(v, -*clip_qkv_, *clip_qkv_);
  }
  auto heads = [&](const Variable& y, int64_t n) {
    return transpose(reshape(y, {b, t, n, head_dim_}), 1, 2);  // [B, n, T, D]
  };
  q = rotary_.apply(heads(q, num_heads_), positions);
  k = rotary_.apply(heads(k, num_kv_heads_), positions);
  Variable attn = scaled_dot_product_attention(q, k, heads(v, num_kv_heads_), /*causal=*/true);
  return o_proj_->forward(reshape(transpose(attn, 1, 2), {b, t, num_heads_ * head_dim_}));
}

}  // namespace moegrad
