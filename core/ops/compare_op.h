// The scalar function of each CompareOp, shared by the CPU loop and the CUDA kernel, called in
// compute_t of the storage type (bf16 compares as f32, which is exact).
#pragma once
#include "core/dtype.h"
#include "core/ops/compare.h"
#include "core/ops/unary_op.h"

namespace moegrad {

template <CompareOp Op, typename T>
MOEGRAD_HD bool compare_apply(T a, T b) {
  if constexpr (Op == CompareOp::Eq) return a == b;
  if constexpr (Op == CompareOp::Ne) return a != b;
  if constexpr (Op == CompareOp::Lt) return a < b;
  if constexpr (Op == CompareOp::Le) return a <= b;
  if constexpr (Op == CompareOp::Gt) return a > b;
  if constexpr (Op == CompareOp::Ge) return a >= b;
}

template <typename Fn>
void dispatch_compare(CompareOp op, Fn&& fn) {
  using C = CompareOp;
  dispatch_enum<C, C::Eq, C::Ne, C::Lt, C::Le, C::Gt, C::Ge>(op, fn);
}

// The dtypes compare and where take: every dtype but f16, a storage format only.
template <typename Fn>
decltype(auto) dispatch_comparable(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::F32: return fn(type_tag<float>{});
    case DType::F64: return fn(type_tag<double>{});
    case DType::BF16: return fn(type_tag<bf16>{});
    case DType::I32: return fn(type_tag<int32_t>{});
    case DType::I64: return fn(type_tag<int64_t>{});
    case DType::Bool: return fn(type_tag<bool>{});
    default:
      throw Error(std::string(op) + ": " + dtype_name(t) + " is not supported; convert with .to()");
  }
}

}  // namespace moegrad
