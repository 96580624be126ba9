// Differentiable SwiGLU, silu(gate) * up: the MoE experts' activation in one fused op.
#pragma once
#include "autograd/variable.h"

namespace moegrad {

// gate and up: one shape, dtype and device (core/ops/swiglu.h). The graph saves only gate and
// up (not silu(gate) as silu then mul would): the backward recomputes the sigmoid.
Variable swiglu(const Variable& gate, const Variable& up);

}  // namespace moegrad
