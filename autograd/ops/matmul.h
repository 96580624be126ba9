// Differentiable matrix multiplication (2-D and batched with broadcast batch dims) and linear.
#pragma once
#include "autograd/variable.h"

namespace moegrad {

// op(a) @ op(b), as the Tensor matmul in core/ops/matmul.h.
Variable matmul(const Variable& a, const Variable& b, bool trans_a = false, bool trans_b = false);
// x [..., in] @ w^T for w [out, in].
Variable linear(const Variable& x, const Variable& w);

}  // namespace moegrad
