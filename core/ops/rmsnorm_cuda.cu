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

// Rows of D elements split into vectors of V (16 bytes, when the rows and the weight allow; else
// V = 1): a thread loads a vector of each operand at a time, and several of them are in flight
// at once, which single elements are not.

// kThreads threads (a warp, or the whole block for long rows) per row, the row statistic summed
// in f64 like the CPU.
template <int kThreads, int V, typename T, typename C = compute_t<T>>
__global__ void forward_kernel(T* y, C* rstd, const T* x, const T* w, int64_t rows, int64_t D,
                               double eps) {
  constexpr int kRows = kBlock / kThreads;
  __shared__ double sm[kRows][kThreads];
  const int64_t row = int64_t(blockIdx.x) * kRows + threadIdx.y, vectors = D / V;
  double ss = 0;
  if (row < rows) {
#pragma unroll 4
    for (int64_t j = threadIdx.x; j < vectors; j += kThreads) {
      const Vector<T, V> xv = load_vector<V>(x + row * D + j * V);
MOEGRAD_UNROLL
      for (int e = 0; e < V; ++e) {
        const double v = C(xv.v[e]);
        ss += v * v;
      }
    }
  }
  ss = fold_row(ss, sm, [](double a, double b) { return a + b; });
  if (row >= rows) return;
  const C rs = C(1.0 / sqrt(ss / double(D) + eps));
  if (threadIdx.x == 0) rstd[row] = rs;
  map_row<kThreads, V>(
      threadIdx.x, D, [&](int64_t, T xi, T wi) { return T(mul_rn(mul_rn(C(xi), rs), C(wi))); },
      y + row * D, x + row * D, w);
}

// dx_j = r g_j w_j - x_j r^3 / D * sum_k g_k w_k x_k, with the row layout of the forward.
template <int kThreads, int V, typename T, typename C = compute_t<T>>
__global__ void backward_dx_kernel(T* dx, const T* g, const T* x, const T* w, const C* rstd,
                                   int64_t rows, int64_t D) {
  constexpr int kRows = kBlock / kThreads;
  __shared__ double sm[kRows][kThreads];
  const int64_t row = int64_t(blockIdx.x) * kRows + threadIdx.y, vectors = D / V;
  double dot = 0;
  if (row < rows) {
#pragma unroll 4
    for (int64_t j = threadIdx.x; j < vectors; j += kThreads) {
      const int64_t k = row * D + j * V;
      const Vector<T, V> gv = load_vector<V>(g + k), wv = load_vector<V>(w + j * V),
                         xv = load_vector<V>(x + k);
MOEGRAD_UNROLL
      for (int e = 0; e < V; ++e)
        dot += double(C(gv.v[e])) * double(C(wv.v[e])) * double(C(xv.v[e]));
    }
  }
  dot = fold_row(dot, sm, [](double a, double b) { return a + b; });
  if (row >= rows) return;
  const double rs = double(rstd[row]);
  const C c = C(dot * rs * rs * rs / double(D));
  const C rt = C(rs);
  map_row<kThreads, V>(
      threadIdx.x, D,
      [&](int64_t, T gi, T wi, T xi) {
        return T(mul_rn(mul_rn(rt, C(gi)), C(wi)) - mul_rn(C(xi), c));
      },
      dx + row * D, g + row * D, w, x + row * D);
}

// dw is a column sum over rows. A block owns kColumns vectors of V columns of one of the row
// chunks; its kRowLanes lanes of threads take every kRowLanes-th row of the chunk and meet in a
// fixed tree, and the chunks are then summed in chunk order: no atomics, so the bits never
// change (and V leaves each column's order as it is).
constexpr int kColumns = 32;
constexpr int kRowLanes = kBlock / kColumns;
// Enough blocks to fill an H100 for wide and narrow D alike; a constant, not the GPU's SM count,
// so that every GPU gives the same dw.
constexpr int64_t kMaxRowChunks = 128;

template <int V, typename T, typename C = compute_t<T>>
__global__ void dw_partial_kernel(double* partial, const T* g, const T* x, const C* rstd,
                                  int64_t rows, int64_t D, int64_t chunks) {
  __shared__ double sm[kRowLanes][kColumns * V];
  const int64_t j = (int64_t(blockIdx.x) * kColumns + threadIdx.x) * V;
  const int64_t chunk = blockIdx.y;
  const int64_t begin = chunk * rows / chunks, end = (chunk + 1) * rows / chunks;
  double acc[V] = {};
  if (j < D) {
#pragma unroll 4
    for (int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) {
      const Vector<T, V> gv = load_vector<V>(g + r * D + j), xv = load_vector<V>(x + r * D + j);
      const double rs = double(rstd[r]);
MOEGRAD_UNROLL
      for (int e = 0; e < V; ++e) acc[e] += double(C(gv.v[e])) * double(C(xv.v[e])) * rs;
    }
  }
MOEGRAD_UNROLL
  for (int e = 0; e < V; ++e) sm[threadIdx.y][threadIdx.x * V + e] = acc[e];
  __syncthreads();
#pragma unroll
  for (int s = kRowLanes / 2; s > 0; s >>= 1) {
    if (int(threadIdx.y) < s)
MOEGRAD_UNROLL
      for (int e = 0; e < V; ++e)
        sm[threadIdx.y][threadIdx.x * V + e] += sm[threadIdx.y + s][threadIdx.x * V + e];
    __syncthreads();
  }
  if (threadIdx.y == 0 && j < D)
MOEGRAD_UNROLL
    for (int e = 0; e < V; ++e) partial[chunk * D + j + e] = sm[0][threadIdx.x * V + e];
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
    // A warp a row while the row is short in vectors, a block a row beyond.
    launch_over_row_vectors<T>(
        "rmsnorm", rows, D, {&y, &x, &w}, [&](auto width, auto threads, unsigned grid, dim3 block) {
          constexpr int V = decltype(width)::value, kThreads = decltype(threads)::value;
          forward_kernel<kThreads, V, T><<<grid, block, 0, s>>>(
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
      launch_over_row_vectors<T>("rmsnorm_backward", rows, D, {&dx, &grad, &x, &w},
                                 [&](auto width, auto threads, unsigned grid, dim3 block) {
                                   constexpr int V = decltype(width)::value,
                                                 kThreads = decltype(threads)::value;
                                   backward_dx_kernel<kThreads, V, T><<<grid, block, 0, s>>>(
                                       dx.data<T>(), grad.data<T>(), x.data<T>(), w.data<T>(),
                                       rstd.data<C>(), rows, D);
                                 });
      with_vector_width<T>(rows_split<T>(D, {&grad, &x}), [&](auto width) {
        constexpr int V = decltype(width)::value;
        const dim3 grid(unsigned((D / V + kColumns - 1) / kColumns), unsigned(chunks));
        dw_partial_kernel<V, T><<<grid, dim3(kColumns, kRowLanes), 0, s>>>(
            partial.data<double>(), grad.data<T>(), x.data<T>(), rstd.data<C>(), rows, D, chunks);
        MOEGRAD_CUDA_CHECK_LAUNCH();
      });
    }
    // With no rows, no chunk: dw is all zeros, like the CPU's.
    dw_finish_kernel<T><<<grid_for(D), kBlock, 0, s>>>(dw.data<T>(), partial.data<double>(), D,
                                                       chunks);
    MOEGRAD_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace moegrad::cuda
