#include "core/ops/compare_op.h"
#include "core/ops/cpu_loop.h"

namespace moegrad::cpu {

void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_comparable(a.dtype(), "compare", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    dispatch_compare(op, [&](auto c) {
      bool* o = out.data<bool>();
      const T* x = a.data<T>();
      const T* y = b.data<T>();
      strided_loop<3>(out.shape(), {out.strides(), a.strides(), b.strides()},
                      [&](int64_t n, const std::array<int64_t, 3>& off, const std::array<int64_t, 3>& st) {
                        for (int64_t i = 0; i < n; ++i)
                          o[off[0] + i * st[0]] = compare_apply<decltype(c)::value>(
                              C(x[off[1] + i * st[1]]), C(y[off[2] + i * st[2]]));
                      });
    });
  });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  dispatch_comparable(a.dtype(), "where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = out.data<T>();
    const bool* c = cond.data<bool>();
    const T* x = a.data<T>();
    const T* y = b.data<T>();
    strided_loop<4>(out.shape(), {out.strides(), cond.strides(), a.strides(), b.strides()},
                    [&](int64_t n, const std::array<int64_t, 4>& off, const std::array<int64_t, 4>& st) {
                      for (int64_t i = 0; i < n; ++i)
                        o[off[0] + i * st[0]] =
                            c[off[1] + i * st[1]] ? x[off[2] + i * st[2]] : y[off[3] + i * st[3]];
                    });
  });
}

}  // namespace moegrad::cpu
