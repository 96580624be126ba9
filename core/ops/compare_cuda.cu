#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/compare_op.h"

namespace moegrad::cuda {
namespace {

template <int Op, typename T>
__global__ void compare_kernel(bool* out, const T* a, const T* b, int64_t n, StridedIndex<3> ix) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    ix.offsets(i, off);
    out[off[0]] = compare_apply<CompareOp(Op)>(a[off[1]], b[off[2]]);
  }
}

template <typename T>
__global__ void where_kernel(T* out, const bool* c, const T* a, const T* b, int64_t n, StridedIndex<4> ix) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[4];
    ix.offsets(i, off);
    out[off[0]] = c[off[1]] ? a[off[2]] : b[off[3]];
  }
}

}  // namespace

void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  int64_t n = out.numel();
  if (n == 0) return;
  auto ix = make_strided_index<3>(out.shape(), {out.strides(), a.strides(), b.strides()});
  cudaStream_t s = stream(out.device().index);
  dispatch_comparable(a.dtype(), "compare", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_compare(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      compare_kernel<O, T>
          <<<grid_for(n), kBlock, 0, s>>>(out.data<bool>(), a.data<T>(), b.data<T>(), n, ix);
      MOEGRAD_CUDA_CHECK_LAUNCH();
    });
  });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  int64_t n = out.numel();
  if (n == 0) return;
  auto ix = make_strided_index<4>(out.shape(), {out.strides(), cond.strides(), a.strides(), b.strides()});
  cudaStream_t s = stream(out.device().index);
  dispatch_comparable(a.dtype(), "where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    where_kernel<T><<<grid_for(n), kBlock, 0, s>>>(out.data<T>(), cond.data<bool>(), a.data<T>(),
                                                   b.data<T>(), n, ix);
    MOEGRAD_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace moegrad::cuda
