// The MoE router in one op: softmax over all experts, the top-k of the probabilities, and
// optionally their renormalisation to sum to 1 (norm_topk_prob); one kernel forward, one
// backward, where the composition softmax -> topk -> divide by sum takes ~4 and ~9.
//
// Per row of logits x (f32 or f64; every value below is in that dtype, T):
// - probs: softmax(x) as core/ops/softmax computes it: exp(x - max) summed in f64, scaled by
//   T(1 / sum);
// - weights / indices: the k largest stored probs in topk order (core/ops/topk_op.h: larger
//   first, NaN above all numbers, ties to the lower index), so a -inf logit (prob 0) is only
//   picked once every expert of nonzero prob is (a finite logit far enough below the max has
//   prob 0 too, and then ties with it); indices int64;
// - normalize: w_j = p_j / S with S = T(f64 sum of the k picked probs in selection order);
//   otherwise w_j = p_j.
// Backward, g being the weights' gradient: gsel_j = (g_j - s) / S with s = T(f64 sum_j g_j w_j)
// (w and S recomputed as in the forward), or gsel_j = g_j without normalize; then
// grad_x_i = p_i * (d_i - T(dot)), d_i = gsel_j where i = idx_j and 0 elsewhere,
// dot = f64 sum_j gsel_j p_{idx_j}. The CPU and CUDA kernels share this row math
// (router_topk_op.h); the softmax's exp is each backend's own (within 2 ulp of each other; the
// CPU's f32 exp is 0 below -87.3), so a near-tie of a few ulp may pick differently.
#pragma once
#include "core/tensor.h"

namespace moegrad {

struct RouterTopk {
  Tensor probs;    // [N, E], the logits' dtype
  Tensor weights;  // [N, k], descending
  Tensor indices;  // [N, k] int64
};

// logits [N, E] (f32 or f64, any strides), 1 <= k <= E. N may be 0.
RouterTopk router_topk(const Tensor& logits, int64_t k, bool normalize);
// grad_weights [N, k]; probs and indices as router_topk returned them (the indices are trusted:
// in range and distinct within a row) -> grad_logits [N, E].
Tensor router_topk_backward(const Tensor& grad_weights, const Tensor& probs, const Tensor& indices,
                            bool normalize);

// Backends. Every operand is contiguous: logits, probs and grad_logits [N, E]; weights,
// grad_weights and indices [N, k]; N > 0.
namespace cpu {
void router_topk(const Tensor& probs, const Tensor& weights, const Tensor& indices,
                 const Tensor& logits, bool normalize);
void router_topk_backward(const Tensor& grad_logits, const Tensor& grad_weights,
                          const Tensor& probs, const Tensor& indices, bool normalize);
}  // namespace cpu
namespace cuda {
void router_topk(const Tensor& probs, const Tensor& weights, const Tensor& indices,
                 const Tensor& logits, bool normalize);
void router_topk_backward(const Tensor& grad_logits, const Tensor& grad_weights,
                          const Tensor& probs, const Tensor& indices, bool normalize);
}  // namespace cuda

}  // namespace moegrad
