#include "core/ops/cpu_loop.h"
#include "core/ops/rope.h"

namespace moegrad::cpu {
namespace {

template <typename T>
void rotate(const Tensor& out, const Tensor& x, const Tensor& cos, const Tensor& sin,
            bool inverse) {
  using C = compute_t<T>;
  const int64_t seq = x.size(-2), D = x.size(-1), half = D / 2;
  const int64_t rows = D == 0 ? 0 : x.numel() / D;
  const int64_t sd = x.stride(-1), od = out.stride(-1);
  const int64_t lead = x.dim() - 2;
  const Shape& shape = x.shape();
  const T* xp = x.data<T>();
  const C* cp = cos.data<C>();
  const C* sp = sin.data<C>();
  T* op = out.data<T>();
  const C sign = inverse ? C(-1) : C(1);
#pragma omp parallel for schedule(static) if (rows * D >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = r % seq;
    int64_t off = t * x.stride(-2), out_off = t * out.stride(-2);
    for (int64_t d = lead - 1, rem = r / seq; d >= 0; --d) {
      off += (rem % shape[d]) * x.stride(d);
      out_off += (rem % shape[d]) * out.stride(d);
      rem /= shape[d];
    }
    const T* lo = xp + off;
    const T* hi = lo + half * sd;
    const C* c = cp + t * half;
    const C* s = sp + t * half;
    T* o = op + out_off;
    if (sd == 1 && od == 1) {
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const C si = sign * s[i];
        o[i] = T(C(lo[i]) * c[i] - C(hi[i]) * si);
        o[i + half] = T(C(hi[i]) * c[i] + C(lo[i]) * si);
      }
    } else {
      for (int64_t i = 0; i < half; ++i) {
        const C si = sign * s[i];
        o[i * od] = T(C(lo[i * sd]) * c[i] - C(hi[i * sd]) * si);
        o[(i + half) * od] = T(C(hi[i * sd]) * c[i] + C(lo[i * sd]) * si);
      }
    }
  }
}

}  // namespace

void rope(const Tensor& out, const Tensor& x, const Tensor& cos, const Tensor& sin, bool inverse) {
  dispatch_compute(x.dtype(), "rope", [&](auto tag) {
    rotate<typename decltype(tag)::type>(out, x, cos, sin, inverse);
  });
}

}  // namespace moegrad::cpu
