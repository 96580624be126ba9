#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/ops/cpu_loop.h"
#include "core/ops/rmsnorm.h"

namespace moegrad::cpu {
namespace {

// dw is reduced over this many row blocks at most: per-block partial sums, combined in block
// order, make the result independent of how blocks are spread over threads.
constexpr int64_t kMaxRowBlocks = 64;

template <typename T>
void forward(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& w, double eps) {
  using C = compute_t<T>;
  const int64_t D = x.size(-1), rows = D == 0 ? 0 : x.numel() / D;
  const T* xp = x.data<T>();
  const T* wp = w.data<T>();
  T* yp = y.data<T>();
  C* rp = rstd.data<C>();
#pragma omp parallel for schedule(static) if (rows * D >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = xp + r * D;
    T* yr = yp + r * D;
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < D; ++j) ss += double(C(xr[j])) * double(C(xr[j]));
    const C rs = C(1.0 / std::sqrt(ss / double(D) + eps));
    rp[r] = rs;
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) store_rounded(yr[j], C(xr[j]) * rs * C(wp[j]));
  }
}

// dx_j = r g_j w_j - x_j r^3 / D * sum_k g_k w_k x_k;  dw_j = sum_rows g_j x_j r.
template <typename T>
void backward(const Tensor& dx, const Tensor& dw, const Tensor& grad, const Tensor& x,
              const Tensor& w, const Tensor& rstd) {
  using C = compute_t<T>;
  const int64_t D = x.size(-1), rows = D == 0 ? 0 : x.numel() / D;
  const T* gp = grad.data<T>();
  const T* xp = x.data<T>();
  const T* wp = w.data<T>();
  const C* rp = rstd.data<C>();
  T* dxp = dx.data<T>();
  const int64_t blocks = std::min(rows, kMaxRowBlocks);
  std::vector<double> partial(size_t(std::max<int64_t>(blocks, 1) * D), 0.0);
#pragma omp parallel for schedule(static) if (rows * D >= kParallelGrain)
  for (int64_t b = 0; b < blocks; ++b) {
    double* pw = partial.data() + b * D;
    for (int64_t r = b * rows / blocks; r < (b + 1) * rows / blocks; ++r) {
      const T* gr = gp + r * D;
      const T* xr = xp + r * D;
      T* dxr = dxp + r * D;
      const double rs = double(rp[r]);
      double dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t j = 0; j < D; ++j)
        dot += double(C(gr[j])) * double(C(wp[j])) * double(C(xr[j]));
      const C c = C(dot * rs * rs * rs / double(D));
      const C rt = C(rs);
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) {
        store_rounded(dxr[j], rt * C(gr[j]) * C(wp[j]) - C(xr[j]) * c);
        pw[j] += double(C(gr[j])) * double(C(xr[j])) * rs;
      }
    }
  }
  // Block partials summed in block order, into block 0's row.
  for (int64_t b = 1; b < blocks; ++b) {
    const double* pw = partial.data() + b * D;
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) partial[j] += pw[j];
  }
  T* dwp = dw.data<T>();
  for (int64_t j = 0; j < D; ++j) dwp[j] = round_from_f64<T>(partial[j]);
}

}  // namespace

void rmsnorm_forward(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& w,
                     double eps) {
  dispatch_compute(x.dtype(), "rmsnorm", [&](auto tag) {
    forward<typename decltype(tag)::type>(y, rstd, x, w, eps);
  });
}

void rmsnorm_backward(const Tensor& dx, const Tensor& dw, const Tensor& grad, const Tensor& x,
                      const Tensor& w, const Tensor& rstd) {
  dispatch_compute(x.dtype(), "rmsnorm_backward", [&](auto tag) {
    backward<typename decltype(tag)::type>(dx, dw, grad, x, w, rstd);
  });
}

}  // namespace moegrad::cpu
