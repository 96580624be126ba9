// Differentiable fused cross-entropy, see core/ops/cross_entropy.h.
#pragma once
#include "autograd/variable.h"
#include "core/ops/cross_entropy.h"

namespace moegrad {

// logits: [N, V]; targets: int32/int64 [N] (no gradient). A 0-dim loss in the logits' dtype,
// except for bf16 logits: an f32 loss (losses stay f32 under mixed precision), whose backward
// takes the f32 gradient and gives the logits a bf16 gradient.
Variable cross_entropy(const Variable& logits, const Tensor& targets, int64_t ignore_index = -100,
                       Reduction reduction = Reduction::Mean);

}  // namespace moegrad
