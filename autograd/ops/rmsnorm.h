// Differentiable RMSNorm over the last dim: y = x * rsqrt(mean(x^2) + eps) * w.
#pragma once
#include "autograd/variable.h"

namespace moegrad {

// x: [..., D], w: [D].
Variable rmsnorm(const Variable& x, const Variable& w, double eps);

}  // namespace moegrad
