#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/unary_op.h"

namespace moegrad::cuda {
namespace {

template <int Op, typename T>
__global__ void unary_kernel(T* out, const T* x, int64_t n, StridedIndex<2> ix) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    ix.offsets(i, off);
    out[off[0]] = unary_apply<UnaryOp(Op)>(x[off[1]]);
  }
}

template <int Op, typename T>
__global__ void activation_grad_kernel(T* out, const T* g, const T* x, int64_t n, StridedIndex<3> ix) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    ix.offsets(i, off);
    out[off[0]] = activation_grad_apply<ActivationGrad(Op)>(g[off[1]], x[off[2]]);
  }
}

template <int Op, typename T>
__global__ void scalar_kernel(T* out, const T* x, T a, T b, int64_t n, StridedIndex<2> ix) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    ix.offsets(i, off);
    out[off[0]] = scalar_apply<ScalarOp(Op)>(x[off[1]], a, b);
  }
}

}  // namespace

void unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  int64_t n = out.numel();
  if (n == 0) return;
  auto ix = make_strided_index<2>(out.shape(), {out.strides(), x.strides()});
  cudaStream_t s = stream(out.device().index);
  dispatch_float(x.dtype(), "unary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_unary(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      unary_kernel<O, T><<<grid_for(n), kBlock, 0, s>>>(out.data<T>(), x.data<T>(), n, ix);
      MOEGRAD_CUDA_CHECK_LAUNCH();
    });
  });
}

void activation_backward(ActivationGrad op, const Tensor& out, const Tensor& grad, const Tensor& x) {
  int64_t n = out.numel();
  if (n == 0) return;
  auto ix = make_strided_index<3>(out.shape(), {out.strides(), grad.strides(), x.strides()});
  cudaStream_t s = stream(out.device().index);
  dispatch_float(x.dtype(), "activation_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_activation_grad(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      activation_grad_kernel<O, T>
          <<<grid_for(n), kBlock, 0, s>>>(out.data<T>(), grad.data<T>(), x.data<T>(), n, ix);
      MOEGRAD_CUDA_CHECK_LAUNCH();
    });
  });
}

void scalar_op(ScalarOp op, const Tensor& out, const Tensor& x, double a, double b) {
  int64_t n = out.numel();
  if (n == 0) return;
  auto ix = make_strided_index<2>(out.shape(), {out.strides(), x.strides()});
  cudaStream_t s = stream(out.device().index);
  dispatch_float(x.dtype(), "scalar_op", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_scalar_op(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      scalar_kernel<O, T>
          <<<grid_for(n), kBlock, 0, s>>>(out.data<T>(), x.data<T>(), T(a), T(b), n, ix);
      MOEGRAD_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace moegrad::cuda
