#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/binary_op.h"

namespace moegrad::cuda {
namespace {

template <int Op, typename T>
__global__ void binary_kernel(T* out, const T* a, const T* b, int64_t n, StridedIndex<3> ix) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    ix.offsets(i, off);
    out[off[0]] = binary_apply<BinaryOp(Op)>(a[off[1]], b[off[2]]);
  }
}

}  // namespace

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  int64_t n = out.numel();
  if (n == 0) return;
  auto ix = make_strided_index<3>(out.shape(), {out.strides(), a.strides(), b.strides()});
  cudaStream_t s = stream(out.device().index);
  dispatch_float(out.dtype(), "binary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_binary(op, [&](auto op_c) {
      constexpr int O = int(decltype(op_c)::value);
      binary_kernel<O, T><<<grid_for(n), kBlock, 0, s>>>(out.data<T>(), a.data<T>(), b.data<T>(), n, ix);
      MOEGRAD_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace moegrad::cuda
