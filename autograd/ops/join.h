// Differentiable concat, stack and split (core/ops/join.h). The pieces of split are narrow
// views (autograd/ops/views.h), so each one's gradient lands in its own slice of x's.
#pragma once
#include <vector>

#include "autograd/variable.h"

namespace moegrad {

Variable concat(const std::vector<Variable>& xs, int64_t dim = 0);
Variable stack(const std::vector<Variable>& xs, int64_t dim = 0);
std::vector<Variable> split(const Variable& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
std::vector<Variable> split_chunks(const Variable& x, int64_t chunk_size, int64_t dim = 0);

}  // namespace moegrad
