#include "moe/olmoe.h"

#include "autograd/ops.h"
#include "core/error.h"
#include "core/ops/join.h"
#include "core/profiler.h"
#include "moe/losses.h"

namespace moegrad {

OlmoeDecoderLayer::OlmoeDecoderLayer(const OlmoeConfig& c, int64_t index, const InitOptions& init)
    : index_(index) {
  self_attn_ = register_module("self_attn", std::make_shared<OlmoeAttention>(c, init));
  mlp_ = register_module("mlp", std::make_shared<OlmoeSparseMoeBlock>(c, init));
  input_layernorm_ = register_module(
      "input_layernorm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, init.dtype));
  post_attention_layernorm_ =
      register_module("post_attention_layernorm",
                      std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, init.dtype));
}

LayerOutput OlmoeDecoderLayer::forward(const Variable& x, const RouterHooks* hooks) const {
  profiler::ModuleScope scope(this);
  Variable h = x + self_attn_->forward(input_layernorm_->forward(x));
  MoeOutput moe = mlp_->forward(post_attention_layernorm_->forward(h), index_, hooks);
  return {h + moe.hidden, moe.router_logits};
}

OlmoeModel::OlmoeModel(const OlmoeConfig& c, const InitOptions& init) {
  c.validate();
  embed_tokens_ = register_module("embed_tokens",
                                  std::make_shared<Embedding>(c.vocab_size, c.hidden_size, init));
  layers_ = register_module("layers", std::make_shared<ModuleList<OlmoeDecoderLayer>>());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    layers_->push_back(std::make_shared<OlmoeDecoderLayer>(c, i, init));
  norm_ =
      register_module("norm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, init.dtype));
}

ModelOutput OlmoeModel::forward(const Tensor& input_ids, const RouterHooks* hooks) const {
  profiler::ModuleScope scope(this);
  MOEGRAD_CHECK(input_ids.dim() == 2 && !is_floating(input_ids.dtype()),
                "OlmoeModel: input_ids must be an integer [B, T] tensor, got ",
                shape_str(input_ids.shape()), " ", dtype_name(input_ids.dtype()));
  ModelOutput out;
  Variable h = embed_tokens_->forward(input_ids);
  for (int64_t i = 0; i < layers_->size(); ++i) {
    LayerOutput l = (*layers_)[i].forward(h, hooks);
    h = l.hidden;
    out.router_logits.push_back(l.router_logits);
  }
  out.hidden = norm_->forward(h);
  return out;
}

MoeLossWeights MoeLossWeights::hf(const OlmoeConfig& c) {
  MoeLossWeights w;
  w.hf_load_balancing = c.router_aux_loss_coef;
  return w;
}

MoeLossWeights MoeLossWeights::olmoe_training() {
  MoeLossWeights w;
  w.megablocks_load_balancing = 0.01;
  w.z_loss = 0.001;
  return w;
}

OlmoeForCausalLM::OlmoeForCausalLM(const OlmoeConfig& c, const InitOptions& init) : config_(c) {
  c.validate();
  model_ = register_module("model", std::make_shared<OlmoeModel>(c, init));
  lm_head_ =
      register_module("lm_head", std::make_shared<Linear>(c.hidden_size, c.vocab_size, init));
}

ModelOutput OlmoeForCausalLM::forward(const Tensor& input_ids) const {
  ModelOutput out = model_->forward(input_ids, &hooks_);
  out.hidden = lm_head_->forward(out.hidden);
  return out;
}

LossOutput OlmoeForCausalLM::loss(const Tensor& input_ids, const MoeLossWeights& weights,
                                  const Tensor& labels, const Tensor& attention_mask) const {
  const Tensor& y = labels.defined() ? labels : input_ids;
  MOEGRAD_CHECK(y.shape() == input_ids.shape() && input_ids.dim() == 2 && input_ids.size(1) >= 2,
                "OlmoeForCausalLM::loss: labels ", shape_str(y.shape()), " and input_ids ",
                shape_str(input_ids.shape()), " must be the same [B, T] with T >= 2");
  MOEGRAD_CHECK(!attention_mask.defined() || attention_mask.shape() == input_ids.shape(),
                "OlmoeForCausalLM::loss: attention_mask ", shape_str(attention_mask.shape()),
                " must match input_ids ", shape_str(input_ids.shape()));
  LossOutput r;
  r.output = forward(input_ids);
  const int64_t b = input_ids.size(0), t = input_ids.size(1), v = config_.vocab_size;
  // Every position keeps its row and the last one's target is ignored (-100, cross_entropy's
  // ignore_index): the [B * T, V] logits are then a view, not a copy of the largest
  // activation without its last rows.
  const Tensor ignored_last = full({b, 1}, -100, y.dtype(), y.device());
  const Tensor targets = concat({y.narrow(1, 1, t - 1), ignored_last}, 1).reshape({b * t});
  r.ce = cross_entropy(reshape(r.output.hidden, {b * t, v}), targets);
  const int64_t k = config_.num_experts_per_tok;
  auto add = [&](double w, const Variable& term) {
    Variable weighted = term * w;
    r.aux = r.aux.defined() ? r.aux + weighted : weighted;
  };
  if (weights.hf_load_balancing != 0) {
    r.lb = load_balancing_loss_hf(r.output.router_logits, k, attention_mask);
    add(weights.hf_load_balancing, r.lb);
  }
  if (weights.megablocks_load_balancing != 0) {
    Variable lb = load_balancing_loss_megablocks(r.output.router_logits, k);
    add(weights.megablocks_load_balancing, lb);
    r.lb = r.lb.defined() ? r.lb + lb : lb;
  }
  if (weights.z_loss != 0) {
    r.z = router_z_loss(r.output.router_logits);
    add(weights.z_loss, r.z);
  }
  r.loss = r.aux.defined() ? r.ce + r.aux : r.ce;
  return r;
}

void OlmoeForCausalLM::set_expert_gemm(ExpertGemm gemm) const {
  for (int64_t l = 0; l < model_->num_layers(); ++l)
    model_->layer(l).mlp().experts().set_gemm(gemm);
}

std::vector<std::pair<std::string, Tensor>> OlmoeForCausalLM::hf_named_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, p] : named_parameters()) out.emplace_back(name, p.data());
  return out;
}

Tensor OlmoeForCausalLM::hf_tensor(const std::string& name) const {
  for (auto& [n, t] : hf_named_tensors())
    if (n == name) return t;
  throw Error("OlmoeForCausalLM::hf_tensor: no tensor named '" + name + "' in this model");
}

}  // namespace moegrad
