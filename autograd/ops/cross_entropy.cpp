// Cross-entropy's backward: softmax - onehot, rebuilt row by row from the saved logsumexp. The
// loss may differ in dtype from the logits (f32 for bf16); the gradient takes the logits'.
#include "autograd/ops/cross_entropy.h"

#include "autograd/saved_tensors.h"

namespace moegrad {

Variable cross_entropy(const Variable& logits, const Tensor& targets, int64_t ignore_index,
                       Reduction reduction) {
  CrossEntropyOutput out = cross_entropy_forward(logits.data(), targets, ignore_index, reduction);
  return make_result(
      out.loss, "cross_entropy", {logits},
      [x = logits.data(), targets, lse = out.lse, ignore_index, reduction](
          const Tensor& g, const std::vector<bool>&) {
        // Logits that die with this node and that nothing else holds take their own gradient:
        // the [N, V] buffer is not allocated twice. The forward checked these targets.
        const bool overwrite = SavedTensors::expire_after_rule() && sole_owner(x);
        constexpr IndexBounds kTrusted = IndexBounds::Trusted;
        return std::vector<Tensor>{
            overwrite
                ? cross_entropy_backward_(g, x, targets, lse, ignore_index, reduction, kTrusted)
                : cross_entropy_backward(g, x, targets, lse, ignore_index, reduction, kTrusted)};
      });
}

}  // namespace moegrad
