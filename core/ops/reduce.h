// Reductions along dims and over all elements: sum, mean, amax, argmax, logsumexp, and
// sum_to (the reverse of broadcasting).
#pragma once
#include <vector>

#include "core/tensor.h"

namespace moegrad {

// `dims` may be negative; an empty list reduces over every dim.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Sums over the dims along which `shape` was broadcast to x.shape(): the gradient of expand.
Tensor sum_to(const Tensor& x, const Shape& shape);

namespace cpu {
// out has x's rank with size 1 along each reduced dim.
void sum(const Tensor& out, const Tensor& x);
}  // namespace cpu
namespace cuda {
void sum(const Tensor& out, const Tensor& x);
}  // namespace cuda

}  // namespace moegrad
