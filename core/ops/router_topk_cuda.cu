#include <cuda_runtime.h>

#include <climits>

#include "core/cuda/strided.cuh"
#include "core/ops/router_topk.h"
#include "core/ops/router_topk_op.h"
#include "core/ops/topk_op.h"
#include "core/ops/unary_op.h"

namespace moegrad::cuda {
namespace {

// A warp per row, kRows rows per block: an MoE layer has a few dozen to a few hundred experts,
// a handful of elements per lane. Every fold is a butterfly, so all lanes end with the result.
constexpr int kRows = kBlock / 32;
constexpr unsigned kFull = 0xffffffffu;

template <typename T>
__device__ __forceinline__ T warp_max(T m) {
  for (int s = 16; s > 0; s >>= 1) {
    const T o = __shfl_xor_sync(kFull, m, s);
    m = o > m ? o : m;
  }
  return m;
}

// Lane l and lane l ^ s add the same two values (addition commutes): every lane gets the same
// bits.
__device__ __forceinline__ double warp_sum(double s) {
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(kFull, s, o);
  return s;
}

// Keeps in (v, i) the first of the warp's candidates in topk order. The order is total, so
// every lane ends with the same one.
template <typename T>
__device__ __forceinline__ void warp_first(T& v, long long& i) {
  for (int s = 16; s > 0; s >>= 1) {
    const T ov = __shfl_xor_sync(kFull, v, s);
    const long long oi = __shfl_xor_sync(kFull, i, s);
    if (topk_before(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
}

// Lane `lane` owns elements lane, lane + 32, ... of its row: it writes their probabilities and
// reads back only its own. Round r picks the first element in topk order after round r - 1's
// pick (the order is total: nothing needs marking), and lane r % 32 writes it, so each lane
// renormalises only weights it wrote. S adds the picks in selection order, as selected_sum.
template <typename T>
__global__ void router_topk_kernel(T* probs, T* weights, int64_t* indices, const T* logits,
                                   int64_t rows, int64_t e, int64_t k, bool normalize) {
  const int64_t row = int64_t(blockIdx.x) * kRows + threadIdx.y;
  if (row >= rows) return;  // the whole warp: no barrier below spans more than one warp
  const int lane = threadIdx.x;
  const T* x = logits + row * e;
  T* p = probs + row * e;
  T m = -T(INFINITY);
  for (int64_t i = lane; i < e; i += 32) m = x[i] > m ? x[i] : m;  // NaN skipped, as row_max
  m = warp_max(m);
  double s = 0;
  for (int64_t i = lane; i < e; i += 32) s += double(math::exp(T(x[i] - m)));
  const T inv = T(1.0 / warp_sum(s));
  for (int64_t i = lane; i < e; i += 32) p[i] = math::exp(T(x[i] - m)) * inv;

  T* w = weights + row * k;
  int64_t* idx = indices + row * k;
  T pv = T(0);
  long long pi = -1;
  double sum = 0;
  for (int64_t r = 0; r < k; ++r) {
    T bv = T(0);
    long long bi = -1;
    for (long long i = lane; i < e; i += 32) {
      const T v = p[i];
      if ((pi < 0 || topk_before(pv, pi, v, i)) && topk_before(v, i, bv, bi)) {
        bv = v;
        bi = i;
      }
    }
    warp_first(bv, bi);
    if (r % 32 == lane) {
      w[r] = bv;
      idx[r] = bi;
    }
    pv = bv;
    pi = bi;
    sum += double(bv);
  }
  if (!normalize) return;
  const T S = T(sum);
  for (int64_t j = lane; j < k; j += 32) w[j] = w[j] / S;
}

// Every lane computes the row's k-term sums itself, serially in selection order (the reads are
// broadcasts), so it needs nothing from the others; the lane owning a picked element writes its
// gradient after the unpicked value it wrote first.
template <typename T>
__global__ void router_topk_backward_kernel(T* grad_logits, const T* grad_weights, const T* probs,
                                            const int64_t* indices, int64_t rows, int64_t e,
                                            int64_t k, bool normalize) {
  const int64_t row = int64_t(blockIdx.x) * kRows + threadIdx.y;
  if (row >= rows) return;
  const int lane = threadIdx.x;
  const T* p = probs + row * e;
  const T* g = grad_weights + row * k;
  const int64_t* idx = indices + row * k;
  T* gx = grad_logits + row * e;
  const SelectedGrad<T> sg = selected_grad(p, idx, g, k, normalize);
  const T dot = selected_dot(sg, p, idx, g, k);
  for (int64_t i = lane; i < e; i += 32) gx[i] = logit_grad(p[i], T(0), dot);
  for (int64_t j = 0; j < k; ++j) {
    const int64_t i = idx[j];
    if (i % 32 == lane) gx[i] = logit_grad(p[i], sg(g[j]), dot);
  }
}

unsigned row_blocks(int64_t rows) {
  const int64_t blocks = (rows + kRows - 1) / kRows;
  MOEGRAD_CHECK(blocks <= INT_MAX, "router_topk: ", rows, " rows are too many for one launch");
  return unsigned(blocks);
}

}  // namespace

void router_topk(const Tensor& probs, const Tensor& weights, const Tensor& indices,
                 const Tensor& logits, bool normalize) {
  const int64_t rows = logits.size(0), e = logits.size(1), k = weights.size(1);
  cudaStream_t s = stream(logits.device().index);
  dispatch_float(logits.dtype(), "router_topk", [&](auto tag) {
    using T = typename decltype(tag)::type;
    router_topk_kernel<T><<<row_blocks(rows), dim3(32, kRows), 0, s>>>(
        probs.data<T>(), weights.data<T>(), indices.data<int64_t>(), logits.data<T>(), rows, e, k,
        normalize);
    MOEGRAD_CUDA_CHECK_LAUNCH();
  });
}

void router_topk_backward(const Tensor& grad_logits, const Tensor& grad_weights,
                          const Tensor& probs, const Tensor& indices, bool normalize) {
  const int64_t rows = probs.size(0), e = probs.size(1), k = grad_weights.size(1);
  cudaStream_t s = stream(probs.device().index);
  dispatch_float(probs.dtype(), "router_topk_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    router_topk_backward_kernel<T><<<row_blocks(rows), dim3(32, kRows), 0, s>>>(
        grad_logits.data<T>(), grad_weights.data<T>(), probs.data<T>(), indices.data<int64_t>(),
        rows, e, k, normalize);
    MOEGRAD_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace moegrad::cuda
