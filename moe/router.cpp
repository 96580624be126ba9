#include "moe/router.h"

namespace moegrad {

Routing route(const Variable& logits, int64_t k, bool norm_topk_prob) {
  return router_topk(logits, k, norm_topk_prob);  // checks the shapes, naming router_topk
}

}  // namespace moegrad
