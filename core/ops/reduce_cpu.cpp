#include "core/ops/cpu_loop.h"
#include "core/ops/reduce.h"

namespace moegrad::cpu {

void sum(const Tensor& out, const Tensor& x) {
  dispatch_float(x.dtype(), "sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    out.fill_(0.0);
    // Output strides are 0 along reduced dims, so every input element lands on its output.
    Shape ost = out.strides();
    for (int64_t d = 0; d < x.dim(); ++d)
      if (out.size(d) == 1 && x.size(d) != 1) ost[d] = 0;
    T* o = out.data<T>();
    const T* p = x.data<T>();
    // Serial: rows that share an output element must not race.
    int64_t n = x.numel();
    std::vector<int64_t> strides_out(ost.begin(), ost.end());
    Shape idx(x.dim(), 0);
    for (int64_t i = 0; i < n; ++i) {
      int64_t xo = 0, oo = 0;
      for (int64_t d = 0; d < x.dim(); ++d) {
        xo += idx[d] * x.stride(d);
        oo += idx[d] * strides_out[d];
      }
      o[oo] += p[xo];
      for (int64_t d = x.dim() - 1; d >= 0; --d) {
        if (++idx[d] < x.size(d)) break;
        idx[d] = 0;
      }
    }
  });
}

}  // namespace moegrad::cpu
