#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/ops/cpu_loop.h"
#include "core/ops/cpu_math.h"
#include "core/ops/reduce_op.h"
#include "core/ops/softmax.h"

namespace moegrad::cpu {
namespace {

// Columns (softmax over a dim that is not the last) are handled this many at a time, so the
// inner loops run over contiguous memory.
constexpr int64_t kColumns = 64;

// The f64 sum of term(i) for i < n in eight interleaved partial sums, merged in a fixed order:
// no add waits on the previous one, and the result does not depend on the thread count.
template <typename Term>
double row_sum(int64_t n, Term term) {
  double a[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) a[k] += term(i + k);
  for (; i < n; ++i) a[0] += term(i);
  for (int w = 4; w > 0; w /= 2)
    for (int k = 0; k < w; ++k) a[k] += a[k + w];
  return a[0];
}

// Each row is reduced serially by one thread.
template <typename T>
void softmax_rows(T* y, const T* x, int64_t rows, int64_t D, bool log) {
#pragma omp parallel for schedule(static) if (rows * D >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * D;
    T* yr = y + r * D;
    const T m = row_max(xr, D);
    if (log) {
      const T ls = T(std::log(sum_exp(xr, D, m)));
#pragma omp simd
      for (int64_t i = 0; i < D; ++i) yr[i] = (xr[i] - m) - ls;
    } else {
      const T inv = T(1.0 / store_exp(yr, xr, D, m));
#pragma omp simd
      for (int64_t i = 0; i < D; ++i) yr[i] *= inv;
    }
  }
}

template <typename T>
void softmax_columns(T* y, const T* x, int64_t outer, int64_t D, int64_t inner, bool log) {
  int64_t chunks = (inner + kColumns - 1) / kColumns;
#pragma omp parallel for schedule(static) if (outer * D * inner >= kParallelGrain)
  for (int64_t t = 0; t < outer * chunks; ++t) {
    int64_t o = t / chunks, i0 = (t % chunks) * kColumns;
    int64_t w = std::min(kColumns, inner - i0);
    const T* xb = x + o * D * inner + i0;
    T* yb = y + o * D * inner + i0;
    T m[kColumns], f[kColumns];
    double s[kColumns];
    for (int64_t k = 0; k < w; ++k) {
      m[k] = -T(INFINITY);
      s[k] = 0;
    }
    for (int64_t d = 0; d < D; ++d)
      for (int64_t k = 0; k < w; ++k) m[k] = nan_max(m[k], xb[d * inner + k]);
    for (int64_t d = 0; d < D; ++d) {
      for (int64_t k = 0; k < w; ++k) {
        T e = math::exp(T(xb[d * inner + k] - m[k]));
        if (!log) yb[d * inner + k] = e;
        s[k] += double(e);
      }
    }
    for (int64_t k = 0; k < w; ++k) f[k] = log ? T(std::log(s[k])) : T(1.0 / s[k]);
    for (int64_t d = 0; d < D; ++d) {
      for (int64_t k = 0; k < w; ++k) {
        T& v = yb[d * inner + k];
        v = log ? (xb[d * inner + k] - m[k]) - f[k] : v * f[k];
      }
    }
  }
}

// softmax: gx = y * (g - sum(g * y)); log_softmax: gx = g - exp(y) * sum(g).
template <typename T>
void backward_rows(T* gx, const T* g, const T* y, int64_t rows, int64_t D, bool log) {
#pragma omp parallel for schedule(static) if (rows * D >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* gr = g + r * D;
    const T* yr = y + r * D;
    T* out = gx + r * D;
    if (log) {
      T st = T(row_sum(D, [&](int64_t i) { return double(gr[i]); }));
      for (int64_t i = 0; i < D; ++i) out[i] = gr[i] - math::exp(yr[i]) * st;
    } else {
      T st = T(row_sum(D, [&](int64_t i) { return double(gr[i]) * double(yr[i]); }));
      for (int64_t i = 0; i < D; ++i) out[i] = yr[i] * (gr[i] - st);
    }
  }
}

template <typename T>
void backward_columns(T* gx, const T* g, const T* y, int64_t outer, int64_t D, int64_t inner,
                      bool log) {
  int64_t chunks = (inner + kColumns - 1) / kColumns;
#pragma omp parallel for schedule(static) if (outer * D * inner >= kParallelGrain)
  for (int64_t t = 0; t < outer * chunks; ++t) {
    int64_t o = t / chunks, i0 = (t % chunks) * kColumns;
    int64_t w = std::min(kColumns, inner - i0);
    int64_t base = o * D * inner + i0;
    double s[kColumns];
    T st[kColumns];
    for (int64_t k = 0; k < w; ++k) s[k] = 0;
    for (int64_t d = 0; d < D; ++d) {
      const T* gd = g + base + d * inner;
      const T* yd = y + base + d * inner;
      for (int64_t k = 0; k < w; ++k) s[k] += log ? double(gd[k]) : double(gd[k]) * double(yd[k]);
    }
    for (int64_t k = 0; k < w; ++k) st[k] = T(s[k]);
    for (int64_t d = 0; d < D; ++d) {
      const T* gd = g + base + d * inner;
      const T* yd = y + base + d * inner;
      T* od = gx + base + d * inner;
      for (int64_t k = 0; k < w; ++k)
        od[k] = log ? gd[k] - math::exp(yd[k]) * st[k] : yd[k] * (gd[k] - st[k]);
    }
  }
}

template <typename T>
void run_softmax(const Tensor& out, const Tensor& x, bool log) {
  int64_t outer = x.size(0), D = x.size(1), inner = x.size(2);
  if (inner == 1) {
    softmax_rows(out.data<T>(), x.data<T>(), outer, D, log);
  } else {
    softmax_columns(out.data<T>(), x.data<T>(), outer, D, inner, log);
  }
}

template <typename T>
void run_backward(const Tensor& out, const Tensor& grad, const Tensor& y, bool log) {
  int64_t outer = y.size(0), D = y.size(1), inner = y.size(2);
  if (inner == 1) {
    backward_rows(out.data<T>(), grad.data<T>(), y.data<T>(), outer, D, log);
  } else {
    backward_columns(out.data<T>(), grad.data<T>(), y.data<T>(), outer, D, inner, log);
  }
}

}  // namespace

// bf16 operands are widened to f32 copies (the caller's workspace) and the f32 result is
// rounded once into out: the same function as the CUDA kernels, which read bf16 directly.
void softmax(const Tensor& out, const Tensor& x, bool log) {
  dispatch_compute(x.dtype(), "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bf16>) {
      Tensor y = empty(out.shape(), DType::F32);
      run_softmax<float>(y, x.to(DType::F32), log);
      out.copy_(y);
    } else {
      run_softmax<T>(out, x, log);
    }
  });
}

void softmax_backward(const Tensor& out, const Tensor& grad, const Tensor& y, bool log) {
  dispatch_compute(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bf16>) {
      Tensor gx = empty(out.shape(), DType::F32);
      run_backward<float>(gx, grad.to(DType::F32), y.to(DType::F32), log);
      out.copy_(gx);
    } else {
      run_backward<T>(out, grad, y, log);
    }
  });
}

}  // namespace moegrad::cpu
