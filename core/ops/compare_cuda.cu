#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/compare_op.h"

namespace moegrad::cuda {
namespace {

template <int Op, typename T>
struct CompareFn {
  bool* out;
  const T* a;
  const T* b;
  __device__ void operator()(const int64_t* off) const {
    using C = compute_t<T>;
    out[off[0]] = compare_apply<CompareOp(Op)>(C(a[off[1]]), C(b[off[2]]));
  }
};

template <typename T>
struct WhereFn {
  T* out;
  const bool* cond;
  const T* a;
  const T* b;
  __device__ void operator()(const int64_t* off) const { out[off[0]] = cond[off[1]] ? a[off[2]] : b[off[3]]; }
};

}  // namespace

void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_comparable(a.dtype(), "compare", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_compare(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      launch_elementwise<3>(out.shape(), {out.strides(), a.strides(), b.strides()}, out.device().index,
                            CompareFn<O, T>{out.data<bool>(), a.data<T>(), b.data<T>()});
    });
  });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  dispatch_comparable(a.dtype(), "where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_elementwise<4>(out.shape(), {out.strides(), cond.strides(), a.strides(), b.strides()},
                          out.device().index,
                          WhereFn<T>{out.data<T>(), cond.data<bool>(), a.data<T>(), b.data<T>()});
  });
}

}  // namespace moegrad::cuda
