// Router hooks: record every token's routing per layer, and steer it by editing the router
// logits before the softmax and top-k.
#pragma once
#include <functional>
#include <vector>

#include "autograd/variable.h"

namespace moegrad {

struct RouterRecord {
  int64_t layer;
  Tensor logits;        // [N, E] (after any intervention), N = B*T tokens in row-major order
  Tensor topk_indices;  // [N, k] int64
  Tensor topk_weights;  // [N, k], the weights the expert outputs are combined with
};

// Called once per MoE layer per forward, with detached tensors.
using RouterCapture = std::function<void(const RouterRecord&)>;
// Returns the logits to route with (same shape); it may use autograd ops on them.
using RouterIntervention = std::function<Variable(int64_t layer, const Variable& logits)>;

struct RouterHooks {
  RouterCapture capture;
  RouterIntervention intervene;
};

// An intervention that routes only to `allowed` experts (the others get -inf logits, hence zero
// probability), in the layers listed (every layer when `layers` is empty).
RouterIntervention restrict_experts(std::vector<int64_t> allowed, std::vector<int64_t> layers = {});

}  // namespace moegrad
