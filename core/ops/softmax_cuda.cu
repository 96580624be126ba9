#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/reduce_cuda.cuh"
#include "core/ops/reduce_op.h"
#include "core/ops/softmax.h"

namespace moegrad::cuda {
namespace {

// Softmax over the last dim: kThreads threads (a warp, or the block for long rows) per row,
// W elements a load and a store (16-byte vectors when the rows allow, else 1). One pass finds
// the row's running max and sum of exp, a second writes the outputs. Every kernel here computes
// in C = compute_t<T> and rounds each stored element once to T.
template <int kThreads, int W, typename T, typename C = compute_t<T>>
__global__ void softmax_rows_kernel(T* y, const T* x, int64_t rows, int64_t D, bool log) {
  constexpr int kRows = kBlock / kThreads;
  __shared__ MaxSum<C> sm[kRows][kThreads];
  int64_t row = int64_t(blockIdx.x) * kRows + threadIdx.y;
  const T* xr = x + row * D;
  MaxSum<C> a{-C(INFINITY), 0.0};
  if (row < rows) {
    a = fold_row_elements<kThreads, W>(
        threadIdx.x, D, a, [](MaxSum<C> acc, T xi) { return max_sum_step(acc, C(xi)); }, xr);
  }
  a = fold_row(a, sm, [](MaxSum<C> u, MaxSum<C> v) { return max_sum_combine(u, v); });
  if (row >= rows) return;
  T* yr = y + row * D;
  const C ls = C(math::log(a.s)), inv = C(1.0 / a.s);
  map_row<kThreads, W>(
      threadIdx.x, D,
      [&](int64_t, T x) {
        const C v = C(x);
        return T(log ? (v - a.m) - ls : math::exp(C(v - a.m)) * inv);
      },
      yr, xr);
}

// Softmax over another dim (or over short rows): one thread per (outer, inner) column,
// neighbouring threads reading neighbouring memory.
template <typename T, typename C = compute_t<T>>
__global__ void softmax_columns_kernel(T* y, const T* x, int64_t outer, int64_t D, int64_t inner,
                                       bool log) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < outer * inner;
       j += int64_t(gridDim.x) * blockDim.x) {
    int64_t base = (j / inner) * D * inner + j % inner;
    const T* xc = x + base;
    T* yc = y + base;
    MaxSum<C> a{-C(INFINITY), 0.0};
    for (int64_t d = 0; d < D; ++d) a = max_sum_step(a, C(xc[d * inner]));
    if (log) {
      C ls = C(math::log(a.s));
      for (int64_t d = 0; d < D; ++d) yc[d * inner] = T((C(xc[d * inner]) - a.m) - ls);
    } else {
      C inv = C(1.0 / a.s);
      for (int64_t d = 0; d < D; ++d)
        yc[d * inner] = T(math::exp(C(C(xc[d * inner]) - a.m)) * inv);
    }
  }
}

// softmax: gx = y * (g - sum(g * y)); log_softmax: gx = g - exp(y) * sum(g). Sums in f64,
// values in C, stored as T.
template <typename T>
__device__ __forceinline__ double backward_term(T g, T y, bool log) {
  using C = compute_t<T>;
  return log ? double(C(g)) : double(C(g)) * double(C(y));
}
template <typename T, typename C>
__device__ __forceinline__ T backward_value(T g, T y, C s, bool log) {
  const C gc = C(g), yc = C(y);
  return T(log ? gc - math::exp(yc) * s : yc * (gc - s));
}

template <int kThreads, int W, typename T>
__global__ void backward_rows_kernel(T* gx, const T* g, const T* y, int64_t rows, int64_t D,
                                     bool log) {
  constexpr int kRows = kBlock / kThreads;
  __shared__ double sm[kRows][kThreads];
  int64_t row = int64_t(blockIdx.x) * kRows + threadIdx.y;
  const T* gr = g + row * D;
  const T* yr = y + row * D;
  double s = 0;
  if (row < rows) {
    s = fold_row_elements<kThreads, W>(
        threadIdx.x, D, s,
        [&](double acc, T gi, T yi) { return acc + backward_term(gi, yi, log); }, gr, yr);
  }
  s = fold_row(s, sm, [](double u, double v) { return u + v; });
  if (row >= rows) return;
  const compute_t<T> st = compute_t<T>(s);
  map_row<kThreads, W>(
      threadIdx.x, D, [&](int64_t, T gi, T yi) { return backward_value(gi, yi, st, log); },
      gx + row * D, gr, yr);
}

template <typename T>
__global__ void backward_columns_kernel(T* gx, const T* g, const T* y, int64_t outer, int64_t D,
                                        int64_t inner, bool log) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < outer * inner;
       j += int64_t(gridDim.x) * blockDim.x) {
    int64_t base = (j / inner) * D * inner + j % inner;
    double s = 0;
    for (int64_t d = 0; d < D; ++d)
      s += backward_term(g[base + d * inner], y[base + d * inner], log);
    const compute_t<T> st = compute_t<T>(s);
    for (int64_t d = 0; d < D; ++d) {
      int64_t k = base + d * inner;
      gx[k] = backward_value(g[k], y[k], st, log);
    }
  }
}

// Rows shorter than a warp leave most of it idle: they run one per thread, like columns.
constexpr int64_t kMinRowForWarp = 32;

}  // namespace

void softmax(const Tensor& out, const Tensor& x, bool log) {
  int64_t outer = x.size(0), D = x.size(1), inner = x.size(2);
  cudaStream_t s = stream(x.device().index);
  dispatch_compute(x.dtype(), "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* y = out.data<T>();
    const T* xp = x.data<T>();
    if (inner > 1 || D < kMinRowForWarp) {
      softmax_columns_kernel<T>
          <<<grid_for(outer * inner), kBlock, 0, s>>>(y, xp, outer, D, inner, log);
      MOEGRAD_CUDA_CHECK_LAUNCH();
      return;
    }
    launch_over_row_vectors<T>(
        "softmax", outer, D, {&out, &x}, [&](auto width, auto threads, unsigned grid, dim3 block) {
          constexpr int W = decltype(width)::value, kThreads = decltype(threads)::value;
          softmax_rows_kernel<kThreads, W, T><<<grid, block, 0, s>>>(y, xp, outer, D, log);
        });
  });
}

void softmax_backward(const Tensor& out, const Tensor& grad, const Tensor& y, bool log) {
  int64_t outer = y.size(0), D = y.size(1), inner = y.size(2);
  cudaStream_t s = stream(y.device().index);
  dispatch_compute(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* gx = out.data<T>();
    const T* g = grad.data<T>();
    const T* yp = y.data<T>();
    if (inner > 1 || D < kMinRowForWarp) {
      backward_columns_kernel<T>
          <<<grid_for(outer * inner), kBlock, 0, s>>>(gx, g, yp, outer, D, inner, log);
      MOEGRAD_CUDA_CHECK_LAUNCH();
      return;
    }
    launch_over_row_vectors<T>("softmax_backward", outer, D, {&out, &grad, &y},
                               [&](auto width, auto threads, unsigned grid, dim3 block) {
                                 constexpr int W = decltype(width)::value,
                                               kThreads = decltype(threads)::value;
                                 backward_rows_kernel<kThreads, W, T>
                                     <<<grid, block, 0, s>>>(gx, g, yp, outer, D, log);
                               });
  });
}

}  // namespace moegrad::cuda
