// Differentiable views and shape changes. Each shares storage with its input, as the Tensor
// method of the same name does; the gradient is mapped back through the inverse view.
#pragma once
#include <vector>

#include "autograd/variable.h"

namespace moegrad {

Variable view(const Variable& x, const Shape& shape);
Variable reshape(const Variable& x, const Shape& shape);
Variable transpose(const Variable& x, int64_t d0, int64_t d1);
Variable permute(const Variable& x, const std::vector<int64_t>& dims);
Variable narrow(const Variable& x, int64_t dim, int64_t start, int64_t length);
Variable select(const Variable& x, int64_t dim, int64_t index);
Variable expand(const Variable& x, const Shape& shape);
Variable squeeze(const Variable& x, int64_t dim);
Variable unsqueeze(const Variable& x, int64_t dim);
Variable contiguous(const Variable& x);
// A dtype conversion; the gradient is converted back to the input's dtype.
Variable to(const Variable& x, DType dtype);

}  // namespace moegrad
