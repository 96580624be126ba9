// The scalar function of each BinaryOp, shared by the CPU loop and the CUDA kernel so both
// backends compute the same thing. Kernels call it in compute_t of their storage type (f32 for
// bf16) and round the result once.
#pragma once
#include <cmath>

#include "core/half.h"
#include "core/ops/binary.h"

namespace moegrad {

template <BinaryOp Op, typename T>
MOEGRAD_HD T binary_apply(T a, T b) {
  if constexpr (Op == BinaryOp::Add) return a + b;
  if constexpr (Op == BinaryOp::Sub) return a - b;
  if constexpr (Op == BinaryOp::Mul) return a * b;
  if constexpr (Op == BinaryOp::Div) return a / b;
  if constexpr (Op == BinaryOp::Pow) {
#if defined(__CUDA_ARCH__)
    return ::pow(a, b);
#else
    return std::pow(a, b);
#endif
  }
  // NaN propagates, as in torch.maximum.
  if constexpr (Op == BinaryOp::Maximum) return (a != a || a > b) ? a : b;
  if constexpr (Op == BinaryOp::Minimum) return (a != a || a < b) ? a : b;
}

// Calls fn(std::integral_constant<BinaryOp, op>{}) so kernels are instantiated per op.
template <typename Fn>
decltype(auto) dispatch_binary(BinaryOp op, Fn&& fn) {
  switch (op) {
    case BinaryOp::Add: return fn(std::integral_constant<BinaryOp, BinaryOp::Add>{});
    case BinaryOp::Sub: return fn(std::integral_constant<BinaryOp, BinaryOp::Sub>{});
    case BinaryOp::Mul: return fn(std::integral_constant<BinaryOp, BinaryOp::Mul>{});
    case BinaryOp::Div: return fn(std::integral_constant<BinaryOp, BinaryOp::Div>{});
    case BinaryOp::Pow: return fn(std::integral_constant<BinaryOp, BinaryOp::Pow>{});
    case BinaryOp::Maximum: return fn(std::integral_constant<BinaryOp, BinaryOp::Maximum>{});
    case BinaryOp::Minimum: return fn(std::integral_constant<BinaryOp, BinaryOp::Minimum>{});
  }
  throw Error("binary: invalid op");
}

}  // namespace moegrad
