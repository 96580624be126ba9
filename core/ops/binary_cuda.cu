#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/binary_op.h"

namespace moegrad::cuda {
namespace {

template <int Op, typename T>
struct BinaryFn {
  T* out;
  const T* a;
  const T* b;
  __device__ void operator()(const int64_t* off) const {
    using C = compute_t<T>;
    out[off[0]] = T(binary_apply<BinaryOp(Op)>(C(a[off[1]]), C(b[off[2]])));
  }
};

}  // namespace

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_compute(out.dtype(), "binary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_binary(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      launch_elementwise<3>(out.shape(), {out.strides(), a.strides(), b.strides()}, out.device().index,
                            BinaryFn<O, T>{out.data<T>(), a.data<T>(), b.data<T>()});
    });
  });
}

}  // namespace moegrad::cuda
