// Backward rule of router_topk: one fused kernel from the weights' gradient to the logits'.
#include "autograd/ops/router_topk.h"

#include "core/ops/router_topk.h"

namespace moegrad {

RoutedTopk router_topk(const Variable& logits, int64_t k, bool normalize) {
  RouterTopk r = router_topk(logits.data(), k, normalize);
  Variable weights = make_result(
      r.weights, "router_topk", {logits},
      [probs = r.probs, indices = r.indices, normalize](const Tensor& g, const std::vector<bool>&) {
        return std::vector<Tensor>{router_topk_backward(g, probs, indices, normalize)};
      });
  return {weights, r.probs, r.indices};
}

}  // namespace moegrad
