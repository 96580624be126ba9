#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/unary_op.h"

namespace moegrad::cuda {
namespace {

template <int Op, typename T>
struct UnaryFn {
  __device__ T operator()(T x) const { return T(unary_apply<UnaryOp(Op)>(compute_t<T>(x))); }
};

template <int Op, typename T>
struct ActivationGradFn {
  __device__ T operator()(T g, T x) const {
    using C = compute_t<T>;
    return T(activation_grad_apply<ActivationGrad(Op)>(C(g), C(x)));
  }
};

template <int Op, typename T>
struct ScalarFn {
  compute_t<T> a, b;
  __device__ T operator()(T x) const {
    return T(scalar_apply<ScalarOp(Op)>(compute_t<T>(x), a, b));
  }
};

}  // namespace

void unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  dispatch_compute(x.dtype(), "unary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_unary(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      launch_map<T, T>(UnaryFn<O, T>{}, out, x);
    });
  });
}

void activation_backward(ActivationGrad op, const Tensor& out, const Tensor& grad, const Tensor& x) {
  dispatch_compute(x.dtype(), "activation_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_activation_grad(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      launch_map<T, T, T>(ActivationGradFn<O, T>{}, out, grad, x);
    });
  });
}

void scalar_op(ScalarOp op, const Tensor& out, const Tensor& x, double a, double b) {
  dispatch_compute(x.dtype(), "scalar_op", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    dispatch_scalar_op(op, [&](auto c) {
      constexpr int O = int(decltype(c)::value);
      launch_map<T, T>(ScalarFn<O, T>{C(a), C(b)}, out, x);
    });
  });
}

}  // namespace moegrad::cuda
