#include "core/ops/cpu_loop.h"
#include "core/ops/unary_op.h"

namespace moegrad::cpu {
namespace {

// out[i] = f(x[i]) over any strides, f taking and returning compute_t<T>; the all-unit-stride
// run is the vectorised path.
template <typename T, typename F>
void map1(const Tensor& out, const Tensor& x, F f) {
  using C = compute_t<T>;
  T* o = out.data<T>();
  const T* p = x.data<T>();
  strided_loop<2>(out.shape(), {out.strides(), x.strides()},
                  [&](int64_t n, const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& st) {
                    T* op_ = o + off[0];
                    const T* xp = p + off[1];
                    if (st[0] == 1 && st[1] == 1) {
                      for (int64_t i = 0; i < n; ++i) op_[i] = T(f(C(xp[i])));
                    } else {
                      for (int64_t i = 0; i < n; ++i) op_[i * st[0]] = T(f(C(xp[i * st[1]])));
                    }
                  });
}

}  // namespace

void unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  dispatch_compute(x.dtype(), "unary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_unary(op, [&](auto c) {
      map1<T>(out, x, [](compute_t<T> v) { return unary_apply<decltype(c)::value>(v); });
    });
  });
}

void activation_backward(ActivationGrad op, const Tensor& out, const Tensor& grad, const Tensor& x) {
  dispatch_compute(x.dtype(), "activation_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    dispatch_activation_grad(op, [&](auto c) {
      T* o = out.data<T>();
      const T* g = grad.data<T>();
      const T* p = x.data<T>();
      strided_loop<3>(out.shape(), {out.strides(), grad.strides(), x.strides()},
                      [&](int64_t n, const std::array<int64_t, 3>& off, const std::array<int64_t, 3>& st) {
                        for (int64_t i = 0; i < n; ++i)
                          o[off[0] + i * st[0]] = T(activation_grad_apply<decltype(c)::value>(
                              C(g[off[1] + i * st[1]]), C(p[off[2] + i * st[2]])));
                      });
    });
  });
}

void scalar_op(ScalarOp op, const Tensor& out, const Tensor& x, double a, double b) {
  dispatch_compute(x.dtype(), "scalar_op", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    dispatch_scalar_op(op, [&](auto c) {
      C ta = C(a), tb = C(b);
      map1<T>(out, x, [ta, tb](C v) { return scalar_apply<decltype(c)::value>(v, ta, tb); });
    });
  });
}

}  // namespace moegrad::cpu
