// Backward rule of topk: the values' gradient is scattered back to the selected positions;
// every other element of x gets zero.
#include "autograd/ops/topk.h"

#include "core/ops/index.h"
#include "core/ops/topk.h"

namespace moegrad {

std::pair<Variable, Tensor> topk(const Variable& x, int64_t k) {
  std::pair<Tensor, Tensor> r = topk(x.data(), k);
  Tensor indices = r.second;
  Variable v = make_result(r.first, "topk", {x},
                           [s = x.shape(), indices](const Tensor& g, const std::vector<bool>&) {
                             Tensor zero = zeros(s, g.dtype(), g.device());
                             // topk's own indices: in range by construction.
                             return std::vector<Tensor>{
                                 scatter_add(zero, -1, indices, g, IndexBounds::Trusted)};
                           });
  return {v, indices};
}

}  // namespace moegrad
