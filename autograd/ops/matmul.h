// Differentiable matrix multiplication (2-D and batched with broadcast batch dims), linear, and
// the row-grouped linear of MoE experts.
#pragma once
#include <vector>

#include "autograd/variable.h"

namespace moegrad {

// op(a) @ op(b), as the Tensor matmul in core/ops/matmul.h.
Variable matmul(const Variable& a, const Variable& b, bool trans_a = false, bool trans_b = false);
// x [..., in] @ w^T for w [out, in].
Variable linear(const Variable& x, const Variable& w);
// x [R, in] in consecutive row groups of rows[g] rows, group g through its own w[g] [out, in]
// (core's grouped_matmul): -> [R, out]. A weight whose group has no rows gets a zero gradient;
// callers that want such a weight left without one (an MoE expert no token chose) leave it out.
Variable grouped_linear(const Variable& x, const std::vector<Variable>& w,
                        const std::vector<int64_t>& rows);

}  // namespace moegrad
