#include "moe/router.h"

#include "autograd/ops.h"
#include "core/error.h"

namespace moegrad {

Routing route(const Variable& logits, int64_t k, bool norm_topk_prob) {
  MOEGRAD_CHECK(logits.dim() == 2 && k >= 1 && k <= logits.size(1), "route: logits ",
                shape_str(logits.shape()), " must be [N, E] with 1 <= k = ", k, " <= E");
  RoutedTopk r = router_topk(logits, k, norm_topk_prob);
  return {r.probs, r.weights, r.indices};
}

}  // namespace moegrad
