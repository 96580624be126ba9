// The scalar function of each UnaryOp, ScalarOp and ActivationGrad, shared by the CPU loops
// and the CUDA kernels so both backends compute the same thing. Kernels call them in compute_t
// of their storage type (f32 for bf16) and round the result once.
#pragma once
#include <cmath>
#include <type_traits>

#include "core/half.h"
#include "core/ops/unary.h"

namespace moegrad {

namespace math {
#if defined(__CUDA_ARCH__)
#define MOEGRAD_MATH(fn) ::fn
#else
#define MOEGRAD_MATH(fn) std::fn
#endif
// exp for f32 on the host, written so that GCC vectorises the loops that call it (libm's expf
// is an opaque call): Cephes' range reduction and degree-6 polynomial, within 2 ulp of expf.
// Results below FLT_MIN flush to zero.
inline float exp_f32(float x) {
  constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  // ln(FLT_MIN) and ln(FLT_MAX), rounded outwards: exp(kMin) < FLT_MIN, exp(kMax) > FLT_MAX.
  constexpr float kMin = -87.3365447f, kMax = 88.7228391f;
  float xc = x < kMin ? kMin : (x > kMax ? kMax : x);
  // Round to nearest by adding 1.5 * 2^23 (floorf would not vectorise); n is then the low
  // bits of the sum.
  constexpr float kRound = 12582912.0f;
  const float t = xc * kLog2e + kRound;
  const float n = t - kRound;
  const uint32_t ni = f32_bits(t) - f32_bits(kRound);
  float r = xc - n * kLn2Hi - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // p * 2^n by adding n to p's exponent: one integer add instead of two multiplies by powers of
  // two. It is exact because p * 2^n stays a normal float for kMin < x < kMax: n = -126 only
  // with r >= 0 (p >= 1), and n = 128 only with r < 0 (p < 1).
  float y = f32_from_bits(f32_bits(p) + (ni << 23));
  y = x <= kMin ? 0.0f : y;
  y = x >= kMax ? INFINITY : y;
  return x != x ? x : y;
}

template <typename T> MOEGRAD_HD T exp(T x) {
#if !defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, float>) return exp_f32(x);
#endif
  return MOEGRAD_MATH(exp)(x);
}
template <typename T> MOEGRAD_HD T log(T x) { return MOEGRAD_MATH(log)(x); }
template <typename T> MOEGRAD_HD T sqrt(T x) { return MOEGRAD_MATH(sqrt)(x); }
template <typename T> MOEGRAD_HD T tanh(T x) { return MOEGRAD_MATH(tanh)(x); }
template <typename T> MOEGRAD_HD T erf(T x) { return MOEGRAD_MATH(erf)(x); }
template <typename T> MOEGRAD_HD T pow(T x, T y) { return MOEGRAD_MATH(pow)(x, y); }
template <typename T> MOEGRAD_HD T abs(T x) { return MOEGRAD_MATH(fabs)(x); }
#undef MOEGRAD_MATH
template <typename T> MOEGRAD_HD T sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }
}  // namespace math

template <UnaryOp Op, typename T>
MOEGRAD_HD T unary_apply(T x) {
  if constexpr (Op == UnaryOp::Neg) return -x;
  if constexpr (Op == UnaryOp::Exp) return math::exp(x);
  if constexpr (Op == UnaryOp::Log) return math::log(x);
  if constexpr (Op == UnaryOp::Sqrt) return math::sqrt(x);
  if constexpr (Op == UnaryOp::Rsqrt) return T(1) / math::sqrt(x);
  if constexpr (Op == UnaryOp::Abs) return math::abs(x);
  if constexpr (Op == UnaryOp::Sign) return T((x > T(0)) - (x < T(0)));
  if constexpr (Op == UnaryOp::Square) return x * x;
  if constexpr (Op == UnaryOp::Reciprocal) return T(1) / x;
  if constexpr (Op == UnaryOp::Tanh) return math::tanh(x);
  if constexpr (Op == UnaryOp::Sigmoid) return math::sigmoid(x);
  if constexpr (Op == UnaryOp::Silu) return x * math::sigmoid(x);
  if constexpr (Op == UnaryOp::Relu) return x > T(0) ? x : T(0);
  if constexpr (Op == UnaryOp::Gelu) return T(0.5) * x * (T(1) + math::erf(x * T(0.70710678118654752440)));
}

// grad * f'(x)
template <ActivationGrad Op, typename T>
MOEGRAD_HD T activation_grad_apply(T g, T x) {
  if constexpr (Op == ActivationGrad::Sigmoid) {
    T s = math::sigmoid(x);
    return g * s * (T(1) - s);
  }
  if constexpr (Op == ActivationGrad::Silu) {
    T s = math::sigmoid(x);
    return g * s * (T(1) + x * (T(1) - s));
  }
  if constexpr (Op == ActivationGrad::Relu) return x > T(0) ? g : T(0);
  if constexpr (Op == ActivationGrad::Gelu) {
    T cdf = T(0.5) * (T(1) + math::erf(x * T(0.70710678118654752440)));
    T pdf = T(0.39894228040143267794) * math::exp(T(-0.5) * x * x);
    return g * (cdf + x * pdf);
  }
  if constexpr (Op == ActivationGrad::Tanh) {
    T t = math::tanh(x);
    return g * (T(1) - t * t);
  }
}

template <ScalarOp Op, typename T>
MOEGRAD_HD T scalar_apply(T x, T a, T b) {
  if constexpr (Op == ScalarOp::Add) return x + a;
  if constexpr (Op == ScalarOp::Mul) return x * a;
  if constexpr (Op == ScalarOp::RSub) return a - x;
  if constexpr (Op == ScalarOp::RDiv) return a / x;
  if constexpr (Op == ScalarOp::Pow) return math::pow(x, a);
  // NaN passes through, as in torch.clamp.
  if constexpr (Op == ScalarOp::Clamp) return x < a ? a : (x > b ? b : x);
}

template <typename E, E... Values, typename Fn>
decltype(auto) dispatch_enum(E op, Fn&& fn) {
  using R = decltype(fn(std::integral_constant<E, E{}>{}));
  if constexpr (std::is_void_v<R>) {
    bool hit = ((op == Values ? (fn(std::integral_constant<E, Values>{}), true) : false) || ...);
    if (!hit) throw Error("invalid elementwise op");
  } else {
    R r{};
    bool hit = ((op == Values ? (r = fn(std::integral_constant<E, Values>{}), true) : false) || ...);
    if (!hit) throw Error("invalid elementwise op");
    return r;
  }
}

template <typename Fn>
void dispatch_unary(UnaryOp op, Fn&& fn) {
  using U = UnaryOp;
  dispatch_enum<U, U::Neg, U::Exp, U::Log, U::Sqrt, U::Rsqrt, U::Abs, U::Sign, U::Square,
                U::Reciprocal, U::Tanh, U::Sigmoid, U::Silu, U::Relu, U::Gelu>(op, fn);
}
template <typename Fn>
void dispatch_activation_grad(ActivationGrad op, Fn&& fn) {
  using A = ActivationGrad;
  dispatch_enum<A, A::Sigmoid, A::Silu, A::Relu, A::Gelu, A::Tanh>(op, fn);
}
template <typename Fn>
void dispatch_scalar_op(ScalarOp op, Fn&& fn) {
  using S = ScalarOp;
  dispatch_enum<S, S::Add, S::Mul, S::RSub, S::RDiv, S::Pow, S::Clamp>(op, fn);
}

}  // namespace moegrad
