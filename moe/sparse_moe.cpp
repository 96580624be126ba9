#include "moe/sparse_moe.h"

#include "autograd/ops.h"
#include "core/error.h"
#include "core/profiler.h"
#include "moe/router.h"

namespace moegrad {

OlmoeSparseMoeBlock::OlmoeSparseMoeBlock(const OlmoeConfig& c, const InitOptions& init)
    : top_k_(c.num_experts_per_tok), norm_topk_prob_(c.norm_topk_prob) {
  c.validate();
  gate_ = register_module("gate", std::make_shared<Linear>(c.hidden_size, c.num_experts, init));
  experts_ = register_module("experts", std::make_shared<OlmoeExperts>(c.num_experts, c.hidden_size,
                                                                       c.intermediate_size, init));
}

MoeOutput OlmoeSparseMoeBlock::forward(const Variable& x, int64_t layer,
                                       const RouterHooks* hooks) const {
  profiler::ModuleScope scope(this);
  MOEGRAD_CHECK(x.dim() >= 1 && x.size(-1) == gate_->weight().size(1),
                "OlmoeSparseMoeBlock: input ", shape_str(x.shape()), " must end in hidden size ",
                gate_->weight().size(1));
  const Variable flat = reshape(x, {-1, x.size(-1)});
  Variable logits = gate_->forward(flat);
  // Mixed precision routes in f32: softmax, top-k, the auxiliary losses and the hooks.
  if (logits.dtype() == DType::BF16) logits = moegrad::to(logits, DType::F32);
  if (hooks && hooks->intervene) {
    logits = hooks->intervene(layer, logits);
    MOEGRAD_CHECK(logits.shape() == Shape({flat.size(0), gate_->weight().size(0)}),
                  "OlmoeSparseMoeBlock: the intervention returned logits of shape ",
                  shape_str(logits.shape()));
  }
  Routing r = route(logits, top_k_, norm_topk_prob_);
  if (hooks && hooks->capture)
    hooks->capture(RouterRecord{layer, logits.data(), r.indices, r.weights.data()});
  Variable out = experts_->forward(flat, r.weights, r.indices);
  return {reshape(out, x.shape()), logits};
}

}  // namespace moegrad
