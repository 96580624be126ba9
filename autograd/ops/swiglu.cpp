// SwiGLU's backward: the fused kernel, computing only the gradients the inputs want.
#include "autograd/ops/swiglu.h"

#include "core/ops/swiglu.h"

namespace moegrad {

Variable swiglu(const Variable& gate, const Variable& up) {
  return make_result(swiglu(gate.data(), up.data()), "swiglu", {gate, up},
                     [gd = gate.data(), ud = up.data()](const Tensor& g,
                                                        const std::vector<bool>& need) {
                       auto [d_gate, d_up] = swiglu_backward(g, gd, ud, need[0], need[1]);
                       return std::vector<Tensor>{d_gate, d_up};
                     });
}

}  // namespace moegrad
