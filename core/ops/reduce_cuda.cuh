// The block-level fold shared by the CUDA reduction and softmax kernels. Partial results meet
// in shared memory in a fixed tree order, never through atomics, so every run gives the same
// bits.
#pragma once

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

}  // namespace moegrad::cuda
