// Attention's backward: the flash-style kernel, which recomputes the probabilities from the
// saved logsumexp instead of keeping them.
#include "autograd/ops/attention.h"

#include "core/ops/attention.h"

namespace moegrad {

Variable scaled_dot_product_attention(const Variable& q, const Variable& k, const Variable& v,
                                      bool causal, const Tensor& mask,
                                      std::optional<double> scale) {
  AttentionOutput out = attention_forward(q.data(), k.data(), v.data(), causal, mask, scale);
  return make_result(
      out.out, "scaled_dot_product_attention", {q, k, v},
      [qd = q.data(), kd = k.data(), vd = v.data(), o = out.out, lse = out.lse, causal, mask,
       scale](const Tensor& g, const std::vector<bool>&) {
        AttentionGrads gr = attention_backward(g, qd, kd, vd, o, lse, causal, mask, scale);
        return std::vector<Tensor>{gr.dq, gr.dk, gr.dv};
      });
}

}  // namespace moegrad
