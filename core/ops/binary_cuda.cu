#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/binary_op.h"

namespace moegrad::cuda {
namespace {

template <int Op, typename T>
struct BinaryFn {
  __device__ T operator()(T a, T b) const {
    using C = compute_t<T>;
    return T(binary_apply<BinaryOp(Op)>(C(a), C(b)));
  }
};

}  // namespace

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_compute(out.dtype(), "binary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_binary(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      launch_map<T, T, T>(BinaryFn<O, T>{}, out, a, b);
    });
  });
}

}  // namespace moegrad::cuda
