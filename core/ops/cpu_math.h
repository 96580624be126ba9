// Row kernels shared by the CPU softmax, log-softmax, logsumexp and cross-entropy: the row's
// maximum and its sum of exp(x - max), written as loops GCC vectorises (math::exp_f32 is
// inlined into them). Each row is reduced in a fixed order, so its result does not depend on
// which thread runs it.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/ops/unary_op.h"

namespace moegrad::cpu {

// The largest element of x[0, n), -inf when n == 0. NaN elements are skipped: callers add
// exp(x - max) over the row next, and a NaN makes that sum NaN anyway.
template <typename T>
T row_max(const T* x, int64_t n) {
  T m = -T(INFINITY);
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

namespace detail {
// kLanes partial sums in f64, as every sum of moegrad's reductions: a row whose maximum
// dominates has s = 1 + (small terms), and log(s) keeps those terms only if s does.
template <bool kStore, typename T>
double sum_exp(T* y, const T* x, int64_t n, T m) {
  constexpr int kLanes = 16;
  double a[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int k = 0; k < kLanes; ++k) {
      const T e = math::exp(T(x[i + k] - m));
      if constexpr (kStore) y[i + k] = e;
      a[k] += double(e);
    }
  }
  for (; i < n; ++i) {
    const T e = math::exp(T(x[i] - m));
    if constexpr (kStore) y[i] = e;
    a[0] += double(e);
  }
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int k = 0; k < w; ++k) a[k] += a[k + w];
  return a[0];
}
}  // namespace detail

// The sum of exp(x[i] - m) over i < n, in f64.
template <typename T>
double sum_exp(const T* x, int64_t n, T m) {
  return detail::sum_exp<false>(static_cast<T*>(nullptr), x, n, m);
}

// The same sum, also storing each exp(x[i] - m) to y[i].
template <typename T>
double store_exp(T* y, const T* x, int64_t n, T m) {
  return detail::sum_exp<true>(y, x, n, m);
}

}  // namespace moegrad::cpu
