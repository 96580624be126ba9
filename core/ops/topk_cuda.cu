#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/topk.h"
#include "core/ops/topk_op.h"

namespace moegrad::cuda {
namespace {

// Keeps in (v, i) the earlier of the warp's candidates in topk order.
template <typename T>
__device__ __forceinline__ void warp_best(T& v, long long& i) {
  for (int s = 16; s > 0; s >>= 1) {
    T ov = __shfl_down_sync(0xffffffffu, v, s);
    long long oi = __shfl_down_sync(0xffffffffu, i, s);
    if (topk_before(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
}

// One block per row, k rounds: round r picks the first element in topk order among those
// after the one picked in round r - 1. The order is total, so no element needs marking and
// the row is only read, never staged: O(k n) reads, cheap for the small k of MoE routing.
// Elements are compared as C = compute_t<T> (a bf16 widens exactly), and stored back as T.
template <typename T, typename C = compute_t<T>>
__global__ void topk_kernel(const T* x, T* values, int64_t* indices, int64_t rows, int64_t n,
                            int64_t k) {
  __shared__ C warp_v[32];
  __shared__ long long warp_i[32];
  __shared__ C picked_v;
  __shared__ long long picked_i;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* row = x + r * n;
    C pv = C(0);
    long long pi = -1;
    for (int64_t round = 0; round < k; ++round) {
      C bv = C(0);
      long long bi = -1;
      for (long long j = threadIdx.x; j < n; j += blockDim.x) {
        C v = C(row[j]);
        if ((pi < 0 || topk_before(pv, pi, v, j)) && topk_before(v, j, bv, bi)) {
          bv = v;
          bi = j;
        }
      }
      warp_best(bv, bi);
      if (lane == 0) {
        warp_v[warp] = bv;
        warp_i[warp] = bi;
      }
      __syncthreads();
      if (warp == 0) {
        bv = lane < warps ? warp_v[lane] : C(0);
        bi = lane < warps ? warp_i[lane] : -1;
        warp_best(bv, bi);
        if (lane == 0) {
          picked_v = bv;
          picked_i = bi;
          values[r * k + round] = T(bv);
          indices[r * k + round] = bi;
        }
      }
      __syncthreads();
      pv = picked_v;
      pi = picked_i;
    }
  }
}

}  // namespace

void topk(const Tensor& values, const Tensor& indices, const Tensor& x) {
  const int64_t rows = x.size(0), n = x.size(1), k = values.size(1);
  // A warp per 32 elements of the row, up to 8 warps.
  int threads = int(std::min<int64_t>(kBlock, (n + 31) / 32 * 32));
  unsigned blocks = unsigned(std::min<int64_t>(rows, int64_t(1) << 20));
  cudaStream_t s = stream(x.device().index);
  dispatch_compute(x.dtype(), "topk", [&](auto tag) {
    using T = typename decltype(tag)::type;
    topk_kernel<T><<<blocks, threads, 0, s>>>(x.data<T>(), values.data<T>(),
                                              indices.data<int64_t>(), rows, n, k);
    MOEGRAD_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace moegrad::cuda
