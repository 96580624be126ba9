// Differentiable reductions. argmax is here for convenience; an index is not differentiable,
// so it returns a plain Tensor.
#pragma once
#include <utility>
#include <vector>

#include "autograd/variable.h"

namespace moegrad {

// `dims` may be negative; an empty list reduces over every dim.
Variable sum(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Variable mean(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// The gradient is split evenly among the elements that tie for the maximum, as in torch.amax.
Variable amax(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Variable logsumexp(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// The maximum along `dim` and its index; the gradient goes to that index only.
std::pair<Variable, Tensor> max(const Variable& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Variable& x, int64_t dim, bool keepdim = false);

}  // namespace moegrad
