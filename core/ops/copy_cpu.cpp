#include "core/ops/copy.h"
#include "core/ops/cpu_loop.h"

namespace moegrad::cpu {

void copy_into(const Tensor& dst, const Tensor& src) {
  dispatch_all(dst.dtype(), [&](auto dt) {
    using D = typename decltype(dt)::type;
    dispatch_all(src.dtype(), [&](auto stag) {
      using S = typename decltype(stag)::type;
      D* d = static_cast<D*>(dst.data_ptr());
      const S* s = static_cast<const S*>(src.data_ptr());
      strided_loop<2>(dst.shape(), {dst.strides(), src.strides()},
                      [&](int64_t n, const std::array<int64_t, 2>& off,
                          const std::array<int64_t, 2>& st) {
                        D* dp = d + off[0];
                        const S* sp = s + off[1];
                        if (st[0] == 1 && st[1] == 1) {
                          for (int64_t i = 0; i < n; ++i) dp[i] = convert_value<D>(sp[i]);
                        } else {
                          for (int64_t i = 0; i < n; ++i) dp[i * st[0]] = convert_value<D>(sp[i * st[1]]);
                        }
                      });
    });
  });
}

void fill_into(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), [&](auto dt) {
    using D = typename decltype(dt)::type;
    D v = convert_value<D>(value);
    D* d = static_cast<D*>(dst.data_ptr());
    strided_loop<1>(dst.shape(), {dst.strides()},
                    [&](int64_t n, const std::array<int64_t, 1>& off,
                        const std::array<int64_t, 1>& st) {
                      for (int64_t i = 0; i < n; ++i) d[off[0] + i * st[0]] = v;
                    });
  });
}

}  // namespace moegrad::cpu
