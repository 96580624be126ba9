#include "moe/losses.h"

#include "autograd/ops.h"
#include "core/error.h"
#include "core/ops/binary.h"
#include "core/ops/index.h"
#include "core/ops/reduce.h"
#include "core/ops/topk.h"

namespace moegrad {
namespace {

void check_logits(const char* op, const std::vector<Variable>& logits, int64_t top_k) {
  MOEGRAD_CHECK(!logits.empty(), op, ": no router logits");
  for (const Variable& l : logits)
    MOEGRAD_CHECK(l.dim() == 2 && l.shape() == logits[0].shape(), op, ": router logits ",
                  shape_str(l.shape()), " must all be [N, E] of the same shape as ",
                  shape_str(logits[0].shape()));
  MOEGRAD_CHECK(top_k >= 1 && top_k <= logits[0].size(1), op, ": top_k ", top_k,
                " out of range for ", logits[0].size(1), " experts");
}

// one_hot of the top-k choices of `probs` [N, E] as a constant: [N, k, E] in probs' dtype. topk's
// indices lie in [0, E), so one_hot need not check them (on a GPU, a wait for the device in the
// middle of every forward).
Tensor choice_mask(const Variable& probs, int64_t top_k) {
  Tensor idx = topk(probs.data(), top_k).second;
  return one_hot(idx, probs.size(1), probs.dtype(), IndexBounds::Trusted);
}

}  // namespace

Variable load_balancing_loss_hf(const std::vector<Variable>& router_logits, int64_t top_k,
                                const Tensor& token_mask) {
  check_logits("load_balancing_loss_hf", router_logits, top_k);
  const int64_t n = router_logits[0].size(0), e = router_logits[0].size(1);
  Variable r = softmax(concat(router_logits, 0), -1);
  if (!token_mask.defined()) {
    Tensor f = mean(choice_mask(r, top_k), {0});  // [k, E]
    return sum(Variable(f) * mean(r, {0})) * double(e);
  }
  MOEGRAD_CHECK(token_mask.numel() == n, "load_balancing_loss_hf: token_mask ",
                shape_str(token_mask.shape()), " must have one entry per token (", n, ")");
  const Tensor one = token_mask.reshape({n}).to(r.dtype()).to(r.device());
  const double real = sum(one).item();
  MOEGRAD_CHECK(real > 0, "load_balancing_loss_hf: token_mask selects no token");
  // Every layer routes the same tokens: the mask repeats once per layer.
  std::vector<Variable> copies(router_logits.size(), Variable(one.view({n, 1})));
  const Tensor rows = concat(copies, 0).data();                        // [L*N, 1]
  Tensor f = sum(mul(choice_mask(r, top_k), rows.unsqueeze(2)), {0});  // [k, E]
  Variable p = sum(r * Variable(rows), {0});                           // [E]
  const double denom = real * double(router_logits.size());
  return sum(Variable(f) * p) * (double(e) / (denom * denom));
}

Variable load_balancing_loss_megablocks(const std::vector<Variable>& router_logits, int64_t top_k) {
  check_logits("load_balancing_loss_megablocks", router_logits, top_k);
  const int64_t n = router_logits[0].size(0), e = router_logits[0].size(1);
  Variable total;
  for (const Variable& logits : router_logits) {
    Variable p = softmax(logits, -1);
    Tensor counts = sum(choice_mask(p, top_k), {0, 1});  // [E]
    Variable layer = sum(Variable(counts) * mean(p, {0})) * (double(e) / double(n * top_k));
    total = total.defined() ? total + layer : layer;
  }
  return total * (1.0 / double(router_logits.size()));
}

Variable router_z_loss(const std::vector<Variable>& router_logits) {
  check_logits("router_z_loss", router_logits, 1);
  Variable total;
  for (const Variable& logits : router_logits) {
    Variable layer = mean(square(logsumexp(logits, {-1})));
    total = total.defined() ? total + layer : layer;
  }
  return total * (1.0 / double(router_logits.size()));
}

}  // namespace moegrad
