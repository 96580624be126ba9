// Differentiable fused MoE router: softmax over all experts, top-k, optional renormalisation
// (semantics in core/ops/router_topk.h).
#pragma once
#include "autograd/variable.h"

namespace moegrad {

struct RoutedTopk {
  Variable weights;  // [N, k], differentiable w.r.t. the logits
  Tensor probs;      // [N, E], not differentiable
  Tensor indices;    // [N, k] int64
};

RoutedTopk router_topk(const Variable& logits, int64_t k, bool normalize);

}  // namespace moegrad
