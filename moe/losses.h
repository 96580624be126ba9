// Router losses. Each takes the router logits of every MoE layer ([N, E] each) and returns the
// unweighted loss; the caller multiplies by its coefficient.
#pragma once
#include <vector>

#include "autograd/variable.h"

namespace moegrad {

// HF load_balancing_loss_func: logits of all layers concatenated (G: [L*N, E]), r = softmax(G),
// f[j, e] = share of rows whose j-th choice is e, P = mean of r over rows;
// E * sum_{j,e} f[j, e] P[e]. Equals k at perfect balance. `token_mask` ([N] or [B, T] with
// B*T = N, nonzero for real tokens; HF's attention_mask) restricts both means to real tokens.
Variable load_balancing_loss_hf(const std::vector<Variable>& router_logits, int64_t top_k,
                                const Tensor& token_mask = Tensor());

// megablocks: per layer E / (N k) * sum_e count[e] * mean_n p[n, e], averaged over layers.
// Equals 1 at perfect balance.
Variable load_balancing_loss_megablocks(const std::vector<Variable>& router_logits, int64_t top_k);

// ST-MoE router z-loss: mean over tokens of logsumexp(logits)^2, averaged over layers.
Variable router_z_loss(const std::vector<Variable>& router_logits);

}  // namespace moegrad
