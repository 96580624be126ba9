#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/compare_op.h"

namespace moegrad::cuda {
namespace {

template <int Op, typename T>
struct CompareFn {
  __device__ bool operator()(T a, T b) const {
    using C = compute_t<T>;
    return compare_apply<CompareOp(Op)>(C(a), C(b));
  }
};

template <typename T>
struct WhereFn {
  __device__ T operator()(bool cond, T a, T b) const { return cond ? a : b; }
};

}  // namespace

void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_comparable(a.dtype(), "compare", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_compare(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      launch_map<bool, T, T>(CompareFn<O, T>{}, out, a, b);
    });
  });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  dispatch_comparable(a.dtype(), "where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_map<T, bool, T, T>(WhereFn<T>{}, out, cond, a, b);
  });
}

}  // namespace moegrad::cuda
