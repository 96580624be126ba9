#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/unary_op.h"

namespace moegrad::cuda {
namespace {

template <int Op, typename T>
struct UnaryFn {
  T* out;
  const T* x;
  __device__ void operator()(const int64_t* off) const {
    out[off[0]] = T(unary_apply<UnaryOp(Op)>(compute_t<T>(x[off[1]])));
  }
};

template <int Op, typename T>
struct ActivationGradFn {
  T* out;
  const T* g;
  const T* x;
  __device__ void operator()(const int64_t* off) const {
    using C = compute_t<T>;
    out[off[0]] = T(activation_grad_apply<ActivationGrad(Op)>(C(g[off[1]]), C(x[off[2]])));
  }
};

template <int Op, typename T>
struct ScalarFn {
  T* out;
  const T* x;
  compute_t<T> a, b;
  __device__ void operator()(const int64_t* off) const {
    out[off[0]] = T(scalar_apply<ScalarOp(Op)>(compute_t<T>(x[off[1]]), a, b));
  }
};

}  // namespace

void unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  dispatch_compute(x.dtype(), "unary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_unary(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      launch_elementwise<2>(out.shape(), {out.strides(), x.strides()}, out.device().index,
                            UnaryFn<O, T>{out.data<T>(), x.data<T>()});
    });
  });
}

void activation_backward(ActivationGrad op, const Tensor& out, const Tensor& grad, const Tensor& x) {
  dispatch_compute(x.dtype(), "activation_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_activation_grad(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      launch_elementwise<3>(out.shape(), {out.strides(), grad.strides(), x.strides()}, out.device().index,
                            ActivationGradFn<O, T>{out.data<T>(), grad.data<T>(), x.data<T>()});
    });
  });
}

void scalar_op(ScalarOp op, const Tensor& out, const Tensor& x, double a, double b) {
  dispatch_compute(x.dtype(), "scalar_op", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    dispatch_scalar_op(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      launch_elementwise<2>(out.shape(), {out.strides(), x.strides()}, out.device().index,
                            ScalarFn<O, T>{out.data<T>(), x.data<T>(), C(a), C(b)});
    });
  });
}

}  // namespace moegrad::cuda
