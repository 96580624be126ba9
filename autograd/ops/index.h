// Differentiable indexing (core/ops/index.h): gradients flow to the indexed values, never to
// the index tensors. Duplicate indices accumulate their gradients. The forward checks the
// index values unless told they are Trusted; the backward reuses them against the same size
// and never checks again (on CUDA a check is a host synchronisation).
#pragma once
#include "autograd/variable.h"
#include "core/ops/index.h"

namespace moegrad {

Variable index_select(const Variable& x, int64_t dim, const Tensor& idx,
                      IndexBounds bounds = IndexBounds::Checked);
Variable index_add(const Variable& x, int64_t dim, const Tensor& idx, const Variable& src,
                   IndexBounds bounds = IndexBounds::Checked);
Variable index_add_to_zeros(const Shape& shape, int64_t dim, const Tensor& idx,
                            const Variable& src, IndexBounds bounds = IndexBounds::Checked);
Variable gather(const Variable& x, int64_t dim, const Tensor& idx);
Variable scatter_add(const Variable& x, int64_t dim, const Tensor& idx, const Variable& src);

}  // namespace moegrad
