// What the CUDA row kernels (reductions, softmax, cross-entropy, RMSNorm, SwiGLU) share: the
// block-level fold, where partial results meet in shared memory in a fixed tree order, never
// through atomics, so every run gives the same bits; and the launchers that lay rows on blocks.
#pragma once
#include <climits>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "core/cuda/strided.cuh"

namespace moegrad::cuda {

// The block is kRows rows of kThreads threads (threadIdx.y picks the row). Returns, to every
// thread of a row, the fold of the values its threads hold. Every thread of the block must
// call it: it synchronises the block.
template <int kThreads, int kRows, typename Acc, typename Combine>
__device__ __forceinline__ Acc fold_row(Acc a, Acc (&sm)[kRows][kThreads], Combine combine) {
  const int x = threadIdx.x, y = threadIdx.y;
  sm[y][x] = a;
  __syncthreads();
#pragma unroll
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (x < s) sm[y][x] = combine(sm[y][x], sm[y][x + s]);
    __syncthreads();
  }
  Acc out = sm[y][0];
  __syncthreads();  // the caller may reuse sm
  return out;
}

// f(j, vector j of each of in...) for the vectors of W elements of one row of n (a multiple of
// W) that thread `lane` of the row's kThreads takes: j from lane, kThreads apart, elements j * W
// to j * W + W - 1; the operands' vectors are loaded before f runs.
template <int kThreads, int W, typename F, typename... In>
__device__ __forceinline__ void for_row_vectors(int lane, int64_t n, F f, const In*... in) {
#pragma unroll 4
  for (int64_t j = lane; j < n / W; j += kThreads) f(j, load_vector<W>(in + j * W)...);
}

// out[j] = f(j, in[j]...) over the thread's vectors of the row (for_row_vectors).
template <int kThreads, int W, typename Out, typename F, typename... In>
__device__ __forceinline__ void map_row(int lane, int64_t n, F f, Out* out, const In*... in) {
  for_row_vectors<kThreads, W>(
      lane, n,
      [&](int64_t j, const Vector<In, W>&... v) {
        Vector<Out, W> o;
MOEGRAD_UNROLL
        for (int e = 0; e < W; ++e) o.v[e] = f(j * W + e, v.v[e]...);
        store_vector<W>(out + j * W, o);
      },
      in...);
}

// acc = step(acc, in[j]...) over the thread's elements of the row, in order (for_row_vectors):
// the thread's share of a row statistic, for fold_row to combine.
template <int kThreads, int W, typename Acc, typename Step, typename... In>
__device__ __forceinline__ Acc fold_row_elements(int lane, int64_t n, Acc acc, Step step,
                                                 const In*... in) {
  for_row_vectors<kThreads, W>(
      lane, n,
      [&](int64_t, const Vector<In, W>&... v) {
MOEGRAD_UNROLL
        for (int e = 0; e < W; ++e) acc = step(acc, v.v[e]...);
      },
      in...);
  return acc;
}

// Runs a kernel whose block is kRows rows of kThreads threads over `rows` rows of D elements:
// a warp a row up to kMinRowForBlock elements, a whole block a row from there, both keeping
// every lane busy. launch(std::integral_constant<int, kThreads>, grid, block) launches it.
inline constexpr int64_t kMinRowForBlock = 1024;

template <typename Launch>
void launch_over_rows(const char* op, int64_t rows, int64_t D, Launch launch) {
  auto blocks = [&](int threads) {
    const int64_t per = kBlock / threads, n = (rows + per - 1) / per;
    MOEGRAD_CHECK(n <= INT_MAX, op, ": ", rows, " rows are too many for one launch");
    return unsigned(n);
  };
  if (D < kMinRowForBlock)
    launch(std::integral_constant<int, 32>(), blocks(32), dim3(32, kBlock / 32));
  else
    launch(std::integral_constant<int, kBlock>(), blocks(kBlock), dim3(kBlock, 1));
  MOEGRAD_CUDA_CHECK_LAUNCH();
}

// launch_over_rows for a kernel that moves W elements of a row at a time: W = kVectorWidth<T>
// (16 bytes) when rows_split<T>(D, tensors) allows, else 1, the layout then picked from the row's
// D / W vectors. launch(std::integral_constant<int, W>, std::integral_constant<int, kThreads>,
// grid, block) launches it.
template <typename T, typename Launch>
void launch_over_row_vectors(const char* op, int64_t rows, int64_t D,
                             std::initializer_list<const Tensor*> tensors, Launch launch) {
  with_vector_width<T>(rows_split<T>(D, tensors), [&](auto width) {
    launch_over_rows(op, rows, D / decltype(width)::value,
                     [&](auto threads, unsigned grid, dim3 block) {
                       launch(width, threads, grid, block);
                     });
  });
}

}  // namespace moegrad::cuda
