// RoPE's backward: a rotation's transpose is the rotation by the opposite angle.
#include "autograd/ops/rope.h"

#include "core/ops/rope.h"

namespace moegrad {

Variable rope(const Variable& x, double theta, const Tensor& positions) {
  return make_result(rope(x.data(), theta, positions), "rope", {x},
                     [theta, positions](const Tensor& g, const std::vector<bool>&) {
                       return std::vector<Tensor>{rope_backward(g, theta, positions)};
                     });
}

}  // namespace moegrad
