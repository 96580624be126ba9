// SwiGLU's scalar functions, shared by the CPU loops and the CUDA kernels so both backends
// compute the same thing. Called in compute_t of the storage type (f32 for bf16). The sigmoid
// and the order of the products are those of silu, its activation_backward and mul
// (unary_op.h), so f32 and f64 results equal the unfused graph's (bit for bit on the CPU, where
// it was checked); bf16 differs only by rounding once instead of after each op.
#pragma once
#include "core/ops/unary_op.h"

namespace moegrad {

template <typename T>
MOEGRAD_HD T swiglu_apply(T g, T u) {
  return g * math::sigmoid(g) * u;
}

// d_up = grad * silu(g), d_gate = (grad * u) * silu'(g): the sigmoid computed once for both.
template <typename T>
struct SwigluGrad {
  T d_gate, d_up;
};
template <typename T>
MOEGRAD_HD SwigluGrad<T> swiglu_grad_apply(T grad, T g, T u) {
  const T s = math::sigmoid(g);
  return {grad * u * s * (T(1) + g * (T(1) - s)), grad * (g * s)};
}

}  // namespace moegrad
