#include "moe/router.h"

#include "autograd/ops.h"
#include "core/error.h"

namespace moegrad {

Routing route(const Variable& logits, int64_t k, bool norm_topk_prob) {
  MOEGRAD_CHECK(logits.dim() == 2 && k >= 1 && k <= logits.size(1), "route: logits ",
                shape_str(logits.shape()), " must be [N, E] with 1 <= k = ", k, " <= E");
  Routing r;
  r.probs = softmax(logits, -1);
  auto [weights, indices] = topk(r.probs, k);
  r.weights = norm_topk_prob ? weights / sum(weights, {-1}, true) : weights;
  r.indices = indices;
  return r;
}

}  // namespace moegrad
