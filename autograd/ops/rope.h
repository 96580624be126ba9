// Differentiable rotary position embedding (NeoX half layout), see core/ops/rope.h.
#pragma once
#include "autograd/variable.h"

namespace moegrad {

// x: [..., T, D]; positions: int32/int64 [T], or 0..T-1 when undefined.
Variable rope(const Variable& x, double theta, const Tensor& positions = Tensor());

}  // namespace moegrad
