// Top-k routing: softmax over ALL experts, then top-k of the probabilities, optionally
// renormalised to sum to 1 (norm_topk_prob), as one fused op (core/ops/router_topk.h).
#pragma once
#include "autograd/ops/router_topk.h"

namespace moegrad {

// weights [N, k] (descending, differentiable), probs [N, E] (not differentiable: the
// load-balancing loss computes its own softmax of the logits), indices [N, k] int64.
using Routing = RoutedTopk;

// logits: [N, E]. Computed in the logits' dtype (f32 or f64), as HF computes in f32.
Routing route(const Variable& logits, int64_t k, bool norm_topk_prob);

}  // namespace moegrad
