// Unary elementwise math and activations, scalar arithmetic, clamp, and the activations'
// backward kernels.
#pragma once
#include "core/tensor.h"

namespace moegrad {

enum class UnaryOp { Neg, Exp, Log, Sqrt, Rsqrt, Abs, Sign, Square, Reciprocal, Tanh,
                     Sigmoid, Silu, Relu, Gelu };

const char* unary_op_name(UnaryOp op);  // "neg", "exp", ...: the profiler's op names
Tensor unary(UnaryOp op, const Tensor& x);
inline Tensor neg(const Tensor& x) { return unary(UnaryOp::Neg, x); }
inline Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, x); }
inline Tensor log(const Tensor& x) { return unary(UnaryOp::Log, x); }
inline Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, x); }
inline Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::Rsqrt, x); }
inline Tensor abs(const Tensor& x) { return unary(UnaryOp::Abs, x); }
inline Tensor sign(const Tensor& x) { return unary(UnaryOp::Sign, x); }
inline Tensor square(const Tensor& x) { return unary(UnaryOp::Square, x); }
inline Tensor reciprocal(const Tensor& x) { return unary(UnaryOp::Reciprocal, x); }
inline Tensor tanh(const Tensor& x) { return unary(UnaryOp::Tanh, x); }
inline Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::Sigmoid, x); }
inline Tensor silu(const Tensor& x) { return unary(UnaryOp::Silu, x); }
inline Tensor relu(const Tensor& x) { return unary(UnaryOp::Relu, x); }
inline Tensor gelu(const Tensor& x) { return unary(UnaryOp::Gelu, x); }  // exact (erf) form

// Activation backward: grad * f'(x), from the forward input x.
enum class ActivationGrad { Sigmoid, Silu, Relu, Gelu, Tanh };
Tensor activation_backward(ActivationGrad op, const Tensor& grad, const Tensor& x);

// Arithmetic with a scalar, and clamp: one kernel family (x, a, b) -> f(x; a, b).
enum class ScalarOp { Add, Mul, RSub, RDiv, Pow, Clamp };
const char* scalar_op_name(ScalarOp op);  // "add_scalar", ...
Tensor scalar_op(ScalarOp op, const Tensor& x, double a, double b = 0.0);
inline Tensor add_scalar(const Tensor& x, double s) { return scalar_op(ScalarOp::Add, x, s); }
inline Tensor mul_scalar(const Tensor& x, double s) { return scalar_op(ScalarOp::Mul, x, s); }
inline Tensor rsub_scalar(const Tensor& x, double s) { return scalar_op(ScalarOp::RSub, x, s); }  // s - x
inline Tensor rdiv_scalar(const Tensor& x, double s) { return scalar_op(ScalarOp::RDiv, x, s); }  // s / x
inline Tensor pow_scalar(const Tensor& x, double p) { return scalar_op(ScalarOp::Pow, x, p); }
inline Tensor clamp(const Tensor& x, double lo, double hi) { return scalar_op(ScalarOp::Clamp, x, lo, hi); }

namespace cpu {
void unary(UnaryOp op, const Tensor& out, const Tensor& x);
void activation_backward(ActivationGrad op, const Tensor& out, const Tensor& grad, const Tensor& x);
void scalar_op(ScalarOp op, const Tensor& out, const Tensor& x, double a, double b);
}  // namespace cpu
namespace cuda {
void unary(UnaryOp op, const Tensor& out, const Tensor& x);
void activation_backward(ActivationGrad op, const Tensor& out, const Tensor& grad, const Tensor& x);
void scalar_op(ScalarOp op, const Tensor& out, const Tensor& x, double a, double b);
}  // namespace cuda

}  // namespace moegrad
