// RMSNorm's backward: the fused kernel, fed the rstd the forward saved.
#include "autograd/ops/rmsnorm.h"

#include "core/ops/rmsnorm.h"

namespace moegrad {

Variable rmsnorm(const Variable& x, const Variable& w, double eps) {
  RmsNormOutput out = rmsnorm_forward(x.data(), w.data(), eps);
  return make_result(out.y, "rmsnorm", {x, w},
                     [xd = x.data(), wd = w.data(), rstd = out.rstd](const Tensor& g,
                                                                      const std::vector<bool>&) {
                       RmsNormGrads gr = rmsnorm_backward(g, xd, wd, rstd);
                       return std::vector<Tensor>{gr.dx, gr.dw};
                     });
}

}  // namespace moegrad
