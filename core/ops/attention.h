// Scaled-dot-product attention, softmax(scale * q k^T + mask) v, causal and grouped-query,
// computed flash-style: the forward keeps one logsumexp per query row instead of the [T, S]
// probabilities, and the backward recomputes them block by block.
#pragma once
#include <optional>

#include "core/tensor.h"

namespace moegrad {

// The outputs out, dq, dk and dv lie in memory as q, k and v do (empty_like_layout): from
// [B, T, H, D] projections seen as [B, H, T, D], they view back without a copy.
struct AttentionOutput {
  Tensor out;  // [B, H, T, D], laid out as q
  Tensor lse;  // [B, H, T]: logsumexp of each row's scores; +inf for a row that sees no key.
               // In the compute dtype: f32 for bf16 inputs.
};
struct AttentionGrads {
  Tensor dq;  // q's shape
  Tensor dk;  // k's shape, summed over the query heads that share each kv head
  Tensor dv;  // v's shape, likewise
};

// q: [B, H, T, D]; k, v: [B, Hkv, S, D] with H % Hkv == 0: query head h reads kv head
// h / (H / Hkv). causal: query t sees keys j <= t + (S - T). mask: additive, broadcastable to
// [B, H, T, S] (e.g. -inf at padding), q's dtype; no gradient flows to it. scale defaults to
// 1 / sqrt(D). Softmax runs in the inputs' compute dtype: bf16 inputs (q, k, v, mask, grad and
// out alike) get f32 scores, softmax and accumulators, and bf16 outputs rounded once. A row
// whose every score is -inf outputs 0 and gets a zero gradient (torch gives NaN). Any strides;
// unit stride along D avoids a copy.
AttentionOutput attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                  const Tensor& mask = Tensor(),
                                  std::optional<double> scale = std::nullopt);
// grad: the gradient of out; out and lse from attention_forward on the same inputs.
AttentionGrads attention_backward(const Tensor& grad, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Tensor& out, const Tensor& lse,
                                  bool causal, const Tensor& mask = Tensor(),
                                  std::optional<double> scale = std::nullopt);
inline Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                           bool causal = true, const Tensor& mask = Tensor(),
                                           std::optional<double> scale = std::nullopt) {
  return attention_forward(q, k, v, causal, mask, scale).out;
}

namespace cpu {
// q, k, v, grad, out, dq, dk, dv: unit stride along D and a row stride of at least D (dense
// per (batch, head) or interleaved, as empty_like_layout makes them); mask: undefined or
// expanded to [B, H, T, S]; lse contiguous. scale already resolved. bf16
// operands are widened to f32 copies (workspace) for the f32 kernels, the outputs rounded once.
void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                       const Tensor& v, bool causal, const Tensor& mask, double scale);
void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, bool causal, const Tensor& mask, double scale);
}  // namespace cpu

namespace cuda {
// The same contract as cpu::; head dims up to 128. bf16 is read and written as bf16.
void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                       const Tensor& v, bool causal, const Tensor& mask, double scale);
void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, bool causal, const Tensor& mask, double scale);
}  // namespace cuda

}  // namespace moegrad
