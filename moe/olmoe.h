// The OLMoE model (HF OlmoeForCausalLM): decoder layers of pre-norm attention and sparse MoE,
// final norm, untied lm_head; parameter names are the HF checkpoint's.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "moe/hooks.h"
#include "moe/sparse_moe.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/olmoe_config.h"

namespace moegrad {

struct LayerOutput {
  Variable hidden;
  Variable router_logits;  // [B*T, E]
};

class OlmoeDecoderLayer : public Module {
 public:
  OlmoeDecoderLayer(const OlmoeConfig& config, int64_t index, const InitOptions& init = {});
  LayerOutput forward(const Variable& x, const RouterHooks* hooks = nullptr) const;

  OlmoeAttention& self_attn() const { return *self_attn_; }
  OlmoeSparseMoeBlock& mlp() const { return *mlp_; }

 private:
  int64_t index_;
  std::shared_ptr<OlmoeAttention> self_attn_;
  std::shared_ptr<OlmoeSparseMoeBlock> mlp_;
  std::shared_ptr<RMSNorm> input_layernorm_, post_attention_layernorm_;
};

struct ModelOutput {
  Variable hidden;                      // [B, T, H] (after the final norm) or logits [B, T, V]
  std::vector<Variable> router_logits;  // one [B*T, E] per layer
};

class OlmoeModel : public Module {
 public:
  OlmoeModel(const OlmoeConfig& config, const InitOptions& init = {});
  ModelOutput forward(const Tensor& input_ids, const RouterHooks* hooks = nullptr) const;

  Embedding& embed_tokens() const { return *embed_tokens_; }
  OlmoeDecoderLayer& layer(int64_t i) const { return (*layers_)[i]; }
  int64_t num_layers() const { return layers_->size(); }

 private:
  std::shared_ptr<Embedding> embed_tokens_;
  std::shared_ptr<ModuleList<OlmoeDecoderLayer>> layers_;
  std::shared_ptr<RMSNorm> norm_;
};

// Coefficients of the router losses added to the cross-entropy; 0 leaves a loss out.
struct MoeLossWeights {
  double hf_load_balancing = 0.0;
  double megablocks_load_balancing = 0.0;
  double z_loss = 0.0;
  // HF's training loss: CE + router_aux_loss_coef * load_balancing_loss_func.
  static MoeLossWeights hf(const OlmoeConfig& config);
  // OLMoE's own recipe (megablocks): per-layer LB 0.01 and router z-loss 0.001.
  static MoeLossWeights olmoe_training();
};

struct LossOutput {
  Variable loss;  // ce + weighted router losses
  Variable ce;
  Variable aux;  // the weighted router losses (undefined when every weight is 0)
  // The unweighted router losses, each undefined when its weight is 0: lb is the HF or the
  // megablocks load balancing (whichever has a weight; their weighted sum if both do).
  Variable lb, z;
  ModelOutput output;
};

class OlmoeForCausalLM : public Module {
 public:
  // init.gen null: every weight zero except norms (to be loaded).
  OlmoeForCausalLM(const OlmoeConfig& config, const InitOptions& init = {});

  // input_ids: int [B, T] -> logits [B, T, V] and the router logits of every layer.
  ModelOutput forward(const Tensor& input_ids) const;
  // Next-token cross-entropy: logits[:, t] predicts labels[:, t+1] (labels default to
  // input_ids; -100 is ignored), plus the weighted router losses. attention_mask [B, T]
  // (nonzero = real token) restricts the HF load-balancing means to real tokens, as HF does;
  // it does not mask attention (right padding needs none under the causal mask).
  LossOutput loss(const Tensor& input_ids, const MoeLossWeights& weights,
                  const Tensor& labels = Tensor(), const Tensor& attention_mask = Tensor()) const;

  // How every MoE layer's experts run their GEMMs (OlmoeExperts::set_gemm).
  void set_expert_gemm(ExpertGemm gemm) const;

  // Hooks seen by every MoE layer in later forwards; pass {} to clear.
  void set_router_hooks(RouterHooks hooks) { hooks_ = std::move(hooks); }
  const RouterHooks& router_hooks() const { return hooks_; }

  // The checkpoint's tensors under their HF names, in HF order: the parameters' data (expert
  // weights are views into their layer's stacks).
  std::vector<std::pair<std::string, Tensor>> hf_named_tensors() const;
  // One of those tensors by HF name (a view: copy into it to load); clear error when unknown.
  Tensor hf_tensor(const std::string& name) const;

  const OlmoeConfig& config() const { return config_; }
  OlmoeModel& model() const { return *model_; }
  Linear& lm_head() const { return *lm_head_; }

 private:
  OlmoeConfig config_;
  RouterHooks hooks_;
  std::shared_ptr<OlmoeModel> model_;
  std::shared_ptr<Linear> lm_head_;
};

}  // namespace moegrad
