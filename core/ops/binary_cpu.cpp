#include "core/ops/binary_op.h"
#include "core/ops/cpu_loop.h"

namespace moegrad::cpu {

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_compute(out.dtype(), "binary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    dispatch_binary(op, [&](auto op_c) {
      constexpr BinaryOp O = decltype(op_c)::value;
      T* o = out.data<T>();
      const T* x = a.data<T>();
      const T* y = b.data<T>();
      strided_loop<3>(out.shape(), {out.strides(), a.strides(), b.strides()},
                      [&](int64_t n, const std::array<int64_t, 3>& off,
                          const std::array<int64_t, 3>& st) {
                        T* op_ = o + off[0];
                        const T* xp = x + off[1];
                        const T* yp = y + off[2];
                        if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
                          for (int64_t i = 0; i < n; ++i)
                            op_[i] = T(binary_apply<O>(C(xp[i]), C(yp[i])));
                        } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
                          const C yv = C(*yp);
                          for (int64_t i = 0; i < n; ++i) op_[i] = T(binary_apply<O>(C(xp[i]), yv));
                        } else {
                          for (int64_t i = 0; i < n; ++i)
                            op_[i * st[0]] = T(binary_apply<O>(C(xp[i * st[1]]), C(yp[i * st[2]])));
                        }
                      });
    });
  });
}

}  // namespace moegrad::cpu
