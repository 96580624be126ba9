// OLMoE's sparse MoE block: router `gate` [E, H] and the dropless experts.
#pragma once
#include <memory>

#include "moe/experts.h"
#include "moe/hooks.h"
#include "nn/linear.h"
#include "nn/olmoe_config.h"

namespace moegrad {

struct MoeOutput {
  Variable hidden;         // same shape as the input
  Variable router_logits;  // [N, E], the logits routed with (after any intervention)
};

class OlmoeSparseMoeBlock : public Module {
 public:
  OlmoeSparseMoeBlock(const OlmoeConfig& config, const InitOptions& init = {});
  // x: [..., H]; `layer` names this block to the hooks.
  MoeOutput forward(const Variable& x, int64_t layer = 0, const RouterHooks* hooks = nullptr) const;

  Linear& gate() const { return *gate_; }
  OlmoeExperts& experts() const { return *experts_; }

 private:
  int64_t top_k_;
  bool norm_topk_prob_;
  std::shared_ptr<Linear> gate_;
  std::shared_ptr<OlmoeExperts> experts_;
};

}  // namespace moegrad
