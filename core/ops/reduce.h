// Reductions along dims: sum, mean, amax, max/argmax, logsumexp, and sum_to (the reverse of
// broadcasting). Float inputs (f32, f64, bf16), results in the input's dtype; f32 and bf16
// sums accumulate in f64. Results do not depend on the number of threads: each output is
// folded in an order fixed by the shapes alone.
#pragma once
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace moegrad {

enum class ReduceOp { Sum, Mean, Amax, LogSumExp };

// `dims` may be negative; an empty list reduces over every dim. keepdim leaves size-1 dims
// where the reduced ones were.
Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims = {},
              bool keepdim = false);
// An empty reduced dim gives 0.
inline Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false) {
  return reduce(ReduceOp::Sum, x, dims, keepdim);
}
// An empty reduced dim gives NaN (0 / 0).
inline Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false) {
  return reduce(ReduceOp::Mean, x, dims, keepdim);
}
// The maximum values; NaN propagates. An empty reduced dim is an error.
inline Tensor amax(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false) {
  return reduce(ReduceOp::Amax, x, dims, keepdim);
}
// log(sum(exp(x))), computed without overflow; an empty reduced dim gives -inf.
inline Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims = {},
                        bool keepdim = false) {
  return reduce(ReduceOp::LogSumExp, x, dims, keepdim);
}
// The maximum along `dim` and its index (i64): the first occurrence on ties, the first NaN
// if there is one.
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

// Sums over the dims along which `shape` was broadcast to x.shape(): the gradient of expand.
Tensor sum_to(const Tensor& x, const Shape& shape);

// Backends. x is the [outer, R, inner] strided view (or copy) of the input that reduce.cpp
// builds; output j = o * inner + i reduces x[o, :, i] and is element j of the contiguous
// [outer, inner] outputs.
namespace cpu {
void reduce(ReduceOp op, const Tensor& out, const Tensor& x);
void argmax(const Tensor& values, const Tensor& indices, const Tensor& x);
}  // namespace cpu
namespace cuda {
void reduce(ReduceOp op, const Tensor& out, const Tensor& x);
void argmax(const Tensor& values, const Tensor& indices, const Tensor& x);
}  // namespace cuda

}  // namespace moegrad
