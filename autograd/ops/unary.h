// Differentiable unary math, activations, scalar arithmetic, clamp and where.
#pragma once
#include "autograd/variable.h"

namespace moegrad {

Variable neg(const Variable& x);
Variable exp(const Variable& x);
Variable log(const Variable& x);
Variable sqrt(const Variable& x);
Variable rsqrt(const Variable& x);
Variable abs(const Variable& x);
Variable square(const Variable& x);
Variable tanh(const Variable& x);
Variable sigmoid(const Variable& x);
Variable silu(const Variable& x);
Variable relu(const Variable& x);
Variable gelu(const Variable& x);

Variable add_scalar(const Variable& x, double s);
Variable mul_scalar(const Variable& x, double s);
Variable rsub_scalar(const Variable& x, double s);  // s - x
Variable pow_scalar(const Variable& x, double p);
// The gradient passes where lo <= x <= hi (as in torch.clamp).
Variable clamp(const Variable& x, double lo, double hi);
// cond ? a : b; cond is a bool Tensor (not differentiable).
Variable where(const Tensor& cond, const Variable& a, const Variable& b);

inline Variable operator-(const Variable& x) { return neg(x); }
inline Variable operator*(const Variable& x, double s) { return mul_scalar(x, s); }
inline Variable operator*(double s, const Variable& x) { return mul_scalar(x, s); }
inline Variable operator+(const Variable& x, double s) { return add_scalar(x, s); }

}  // namespace moegrad
