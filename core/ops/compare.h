// Elementwise comparisons (bool results, with broadcasting) and where(cond, a, b).
#pragma once
#include "core/tensor.h"

namespace moegrad {

enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge };

Tensor compare(CompareOp op, const Tensor& a, const Tensor& b);  // same dtype, any dtype
inline Tensor eq(const Tensor& a, const Tensor& b) { return compare(CompareOp::Eq, a, b); }
inline Tensor ne(const Tensor& a, const Tensor& b) { return compare(CompareOp::Ne, a, b); }
inline Tensor lt(const Tensor& a, const Tensor& b) { return compare(CompareOp::Lt, a, b); }
inline Tensor le(const Tensor& a, const Tensor& b) { return compare(CompareOp::Le, a, b); }
inline Tensor gt(const Tensor& a, const Tensor& b) { return compare(CompareOp::Gt, a, b); }
inline Tensor ge(const Tensor& a, const Tensor& b) { return compare(CompareOp::Ge, a, b); }

// cond ? a : b, all three broadcast together; cond is bool, a and b share a dtype.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

namespace cpu {
void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b);
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
}  // namespace cpu
namespace cuda {
void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b);
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
}  // namespace cuda

}  // namespace moegrad
