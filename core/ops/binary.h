// Binary elementwise arithmetic with NumPy broadcasting: add, sub, mul, div, pow, maximum,
// minimum. Both operands must share dtype and device.
#pragma once
#include "core/tensor.h"

namespace moegrad {

enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum };

const char* binary_op_name(BinaryOp op);  // "add", "sub", ...: the profiler's op names
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
inline Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
inline Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }
inline Tensor pow(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Pow, a, b); }
inline Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Maximum, a, b); }
inline Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Minimum, a, b); }
// dst = dst op src in place; src is broadcast to dst's shape (dst is never broadcast).
void binary_(BinaryOp op, const Tensor& dst, const Tensor& src);
inline void add_(const Tensor& dst, const Tensor& src) { binary_(BinaryOp::Add, dst, src); }

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }

namespace cpu {
// out = a op b, all three already of out's shape (a, b possibly expanded: stride 0).
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);
}  // namespace cpu
namespace cuda {
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);
}  // namespace cuda

}  // namespace moegrad
