// Differentiable scaled-dot-product attention (causal, grouped-query), see core/ops/attention.h.
#pragma once
#include <optional>

#include "autograd/variable.h"

namespace moegrad {

// q: [B, H, T, D]; k, v: [B, Hkv, S, D]; mask: additive, broadcastable to [B, H, T, S], gets no
// gradient; scale defaults to 1 / sqrt(D).
Variable scaled_dot_product_attention(const Variable& q, const Variable& k, const Variable& v,
                                      bool causal = true, const Tensor& mask = Tensor(),
                                      std::optional<double> scale = std::nullopt);

}  // namespace moegrad
