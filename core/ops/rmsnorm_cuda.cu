#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <type_traits>

#include "core/cuda/rounding.cuh"
#include "core/cuda/strided.cuh"
#include "core/ops/reduce_cuda.cuh"
#include "core/ops/rmsnorm.h"

namespace moegrad::cuda {
namespace {

// kThreads threads (a warp, or the whole block for long rows) per row, the row statistic summed
// in f64 like the CPU.
template <int kThreads, typename T, typename C = compute_t<T>>
__global__ void forward_kernel(T* y, C* rstd, const T* x, const T* w, int64_t rows, int64_t D,
                               double eps) {
  constexpr int kRows = kBlock / kThreads;
  __shared__ double sm[kRows][kThreads];
  const int64_t row = int64_t(blockIdx.x) * kRows + threadIdx.y;
  double ss = 0;
  if (row < rows)
    for (int64_t j = threadIdx.x; j < D; j += kThreads) {
      const double v = C(x[row * D + j]);
      ss += v * v;
    }
  ss = fold_row(ss, sm, [](double a, double b) { return a + b; });
  if (row >= rows) return;
  const C rs = C(1.0 / sqrt(ss / double(D) + eps));
  if (threadIdx.x == 0) rstd[row] = rs;
  for (int64_t j = threadIdx.x; j < D; j += kThreads)
    y[row * D + j] = T(mul_rn(mul_rn(C(x[row * D + j]), rs), C(w[j])));
}

// dx_j = r g_j w_j - x_j r^3 / D * sum_k g_k w_k x_k, with the row layout of the forward.
template <int kThreads, typename T, typename C = compute_t<T>>
__global__ void backward_dx_kernel(T* dx, const T* g, const T* x, const T* w, const C* rstd,
                                   int64_t rows, int64_t D) {
  constexpr int kRows = kBlock / kThreads;
  __shared__ double sm[kRows][kThreads];
  const int64_t row = int64_t(blockIdx.x) * kRows + threadIdx.y;
  double dot = 0;
  if (row < rows)
    for (int64_t j = threadIdx.x; j < D; j += kThreads)
      dot += double(C(g[row * D + j])) * double(C(w[j])) * double(C(x[row * D + j]));
  dot = fold_row(dot, sm, [](double a, double b) { return a + b; });
  if (row >= rows) return;
  const double rs = double(rstd[row]);
  const C c = C(dot * rs * rs * rs / double(D));
  const C rt = C(rs);
  for (int64_t j = threadIdx.x; j < D; j += kThreads) {
    const int64_t k = row * D + j;
    dx[k] = T(mul_rn(mul_rn(rt, C(g[k])), C(w[j])) - mul_rn(C(x[k]), c));
  }
}

// dw is a column sum over rows. A block owns kColumns columns of one of the row chunks; its
// kRowLanes lanes of threads take every kRowLanes-th row of the chunk and meet in a fixed tree,
// and the chunks are then summed in chunk order: no atomics, so the bits never change.
constexpr int kColumns = 32;
constexpr int kRowLanes = kBlock / kColumns;
// Enough blocks to fill an H100 for wide and narrow D alike; a constant, not the GPU's SM count,
// so that every GPU gives the same dw.
constexpr int64_t kMaxRowChunks = 128;

template <typename T, typename C = compute_t<T>>
__global__ void dw_partial_kernel(double* partial, const T* g, const T* x, const C* rstd,
                                  int64_t rows, int64_t D, int64_t chunks) {
  __shared__ double sm[kRowLanes][kColumns];
  const int64_t j = int64_t(blockIdx.x) * kColumns + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  const int64_t begin = chunk * rows / chunks, end = (chunk + 1) * rows / chunks;
  double acc = 0;
  if (j < D)
    for (int64_t r = begin + threadIdx.y; r < end; r += kRowLanes)
      acc += double(C(g[r * D + j])) * double(C(x[r * D + j])) * double(rstd[r]);
  sm[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
#pragma unroll
  for (int s = kRowLanes / 2; s > 0; s >>= 1) {
    if (int(threadIdx.y) < s) sm[threadIdx.y][threadIdx.x] += sm[threadIdx.y + s][threadIdx.x];
    __syncthreads();
  }
  if (threadIdx.y == 0 && j < D) partial[chunk * D + j] = sm[0][threadIdx.x];
}

template <typename T>
__global__ void dw_finish_kernel(T* dw, const double* partial, int64_t D, int64_t chunks) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < D;
       j += int64_t(gridDim.x) * blockDim.x) {
    double s = 0;
    for (int64_t c = 0; c < chunks; ++c) s += partial[c * D + j];
    dw[j] = round_from_f64<T>(s);
  }
}

}  // namespace

void rmsnorm_forward(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& w,
                     double eps) {
  const int64_t D = x.size(-1), rows = D == 0 ? 0 : x.numel() / D;
  if (rows == 0) return;
  cudaStream_t s = stream(x.device().index);
  dispatch_compute(x.dtype(), "rmsnorm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    launch_over_rows("rmsnorm", rows, D, [&](auto threads, unsigned grid, dim3 block) {
      forward_kernel<decltype(threads)::value, T><<<grid, block, 0, s>>>(
          y.data<T>(), rstd.data<C>(), x.data<T>(), w.data<T>(), rows, D, eps);
    });
  });
}

void rmsnorm_backward(const Tensor& dx, const Tensor& dw, const Tensor& grad, const Tensor& x,
                      const Tensor& w, const Tensor& rstd) {
  const int64_t D = x.size(-1), rows = D == 0 ? 0 : x.numel() / D;
  if (D == 0) return;
  const int64_t chunks = std::min(rows, kMaxRowChunks);
  MOEGRAD_CHECK((D + kColumns - 1) / kColumns <= INT_MAX, "rmsnorm_backward: rows of ", D,
                " elements are too long for one launch");
  cudaStream_t s = stream(x.device().index);
  // Freed on return, but the caching allocator hands it out again only to work queued after
  // the finishing kernel on the same stream.
  Tensor partial = empty({std::max<int64_t>(chunks, 1), D}, DType::F64, x.device());
  dispatch_compute(x.dtype(), "rmsnorm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    if (rows > 0) {
      launch_over_rows("rmsnorm_backward", rows, D, [&](auto threads, unsigned grid, dim3 block) {
        backward_dx_kernel<decltype(threads)::value, T><<<grid, block, 0, s>>>(
            dx.data<T>(), grad.data<T>(), x.data<T>(), w.data<T>(), rstd.data<C>(), rows, D);
      });
      const dim3 grid(unsigned((D + kColumns - 1) / kColumns), unsigned(chunks));
      dw_partial_kernel<T><<<grid, dim3(kColumns, kRowLanes), 0, s>>>(
          partial.data<double>(), grad.data<T>(), x.data<T>(), rstd.data<C>(), rows, D, chunks);
      MOEGRAD_CUDA_CHECK_LAUNCH();
    }
    // With no rows, no chunk: dw is all zeros, like the CPU's.
    dw_finish_kernel<T><<<grid_for(D), kBlock, 0, s>>>(dw.data<T>(), partial.data<double>(), D,
                                                       chunks);
    MOEGRAD_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace moegrad::cuda
