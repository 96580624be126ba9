// Differentiable top-k along the last dim (order and ties as in core/ops/topk.h).
#pragma once
#include <utility>

#include "autograd/variable.h"

namespace moegrad {

// {values, indices}: the values are differentiable, their gradient going back to the
// positions they were taken from; the int64 indices are not.
std::pair<Variable, Tensor> topk(const Variable& x, int64_t k);

}  // namespace moegrad
