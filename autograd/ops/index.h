// Differentiable indexing (core/ops/index.h): gradients flow to the indexed values, never to
// the index tensors. Duplicate indices accumulate their gradients.
#pragma once
#include "autograd/variable.h"

namespace moegrad {

Variable index_select(const Variable& x, int64_t dim, const Tensor& idx);
Variable index_add(const Variable& x, int64_t dim, const Tensor& idx, const Variable& src);
Variable gather(const Variable& x, int64_t dim, const Tensor& idx);
Variable scatter_add(const Variable& x, int64_t dim, const Tensor& idx, const Variable& src);

}  // namespace moegrad
