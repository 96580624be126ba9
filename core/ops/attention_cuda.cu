// Fused attention kernels, FlashAttention-2 style in plain CUDA C++: a block owns a tile of rows
// (queries in the forward and dQ kernels, keys in the dK/dV kernel) and streams the other side
// through shared memory tile by tile, so no [T, S] matrix ever exists. Every sum runs in a fixed
// order and every output element has one writer (no atomics): results are bit-identical run to
// run. Three paths. With a head dim that is a multiple of 4 and rows aligned to 4 elements (what
// training runs), bf16 takes the tensor-core kernels of core/cuda/attention_mma.cuh and f32 the
// FMA-tiled kernels of core/cuda/attention_tiles.cuh; f64, other head dims and unaligned views
// take the generic kernels below (4 lanes per row, any D up to 128, bf16 widened to f32 in
// shared memory). All keep lse and delta in f32 and round each bf16 output once.
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <type_traits>

#include "core/cuda/attention_mma.cuh"
#include "core/cuda/attention_tiles.cuh"
#include "core/cuda/launch.cuh"
#include "core/cuda/strided.cuh"
#include "core/ops/attention.h"
#include "core/ops/unary_op.h"

namespace moegrad::cuda {
namespace {

using attention::Heads;
using attention::kFullWarp;
using attention::max_of;
using attention::Problem;

// Four consecutive threads share a row: each computes the scores of columns lane, lane + 4, ...
// and owns output columns lane, lane + 4, ..., so a row's max and sum take two shuffles.
constexpr int kLanes = 4;
// Rows of the streamed side per shared-memory tile.
constexpr int kCols = 32;
constexpr int kPerLane = kCols / kLanes;
constexpr int kMaxHeadDim = 128;

template <typename T>
Heads<T> heads_of(const Tensor& t) {
  using U = std::remove_const_t<T>;
  return {t.data<U>(), t.stride(0), t.stride(1), t.size(2) == 1 ? t.size(3) : t.stride(2)};
}

// Rows [row0, row0 + rows) of a [n, D] matrix (row stride ld) into a shared tile whose rows are
// D + 1 apart: rows read together by a warp then fall in different banks. Rows past n read as 0.
// The tile holds the compute type C: bf16 is widened here, once per element.
template <typename C, typename T>
__device__ void load_rows(C* tile, const T* src, int64_t ld, int64_t row0, int64_t n, int rows,
                          int D) {
  for (int i = threadIdx.x; i < rows * D; i += blockDim.x) {
    const int r = i / D, c = i - r * D;
    const int64_t row = row0 + r;
    tile[r * (D + 1) + c] = row < n ? C(src[row * ld + c]) : C(0);
  }
}

// out[x] = a . b[lane + 4x] over D: a is this thread's own row, b the streamed tile.
template <typename T>
__device__ void dots(T (&out)[kPerLane], const T* a, const T* b, int D, int lane) {
  const int ld = D + 1;
#pragma unroll
  for (int x = 0; x < kPerLane; ++x) out[x] = T(0);
  for (int c = 0; c < D; ++c) {
    const T ac = a[c];
#pragma unroll
    for (int x = 0; x < kPerLane; ++x) out[x] += ac * b[(lane + kLanes * x) * ld + c];
  }
}

// acc[cc] += sum over the streamed rows x of w[x] * b[x][lane + 4cc], in order of x.
template <typename T, int kD>
__device__ void accumulate(T (&acc)[kD / kLanes], const T* w, const T* b, int D, int lane) {
  const int ld = D + 1;
  for (int x = 0; x < kCols; ++x) {
    const T wx = w[x];
#pragma unroll
    for (int cc = 0; cc < kD / kLanes; ++cc) {
      const int col = lane + kLanes * cc;
      if (col < D) acc[cc] += wx * b[x * ld + col];
    }
  }
}

template <typename T>
__device__ __forceinline__ T row_max(T v) {
  v = max_of(v, __shfl_xor_sync(kFullWarp, v, 1));
  return max_of(v, __shfl_xor_sync(kFullWarp, v, 2));
}
template <typename T>
__device__ __forceinline__ T row_sum(T v) {
  v += __shfl_xor_sync(kFullWarp, v, 1);
  return v + __shfl_xor_sync(kFullWarp, v, 2);
}

// Block (b * H + h, query tile): online softmax over key tiles up to the causal limit.
// Shared: q [kRows][D+1], k and v [kCols][D+1], p [kRows][kCols+1].
// T: the storage type; shared tiles, scores and accumulators are in C = compute_t<T>.
template <typename T, int kD, int kRows, typename C = compute_t<T>>
__global__ void __launch_bounds__(kLanes * kRows)
    forward_kernel(Heads<T> out, C* lse, Heads<const T> q, Heads<const T> k, Heads<const T> v,
                   Problem<T> p) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int D = p.D, ld = D + 1;
  C* qs = reinterpret_cast<C*>(smem);
  C* ks = qs + kRows * ld;
  C* vs = ks + kCols * ld;
  C* ps = vs + kCols * ld;
  const int64_t b = blockIdx.x / p.H, h = blockIdx.x % p.H, hk = h / p.group;
  const int64_t t0 = int64_t(blockIdx.y) * kRows;
  const int row = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  const int64_t t = t0 + row;
  const T* mask = p.mask_at(b, h);
  const T* kh = k.at(b, hk);
  const T* vh = v.at(b, hk);
  C* prow = ps + row * (kCols + 1);
  load_rows(qs, q.at(b, h), q.ld, t0, p.Tq, kRows, D);

  const C neg_inf = -C(INFINITY);
  C m = neg_inf, l = 0, acc[kD / kLanes] = {};
  const int64_t keys = p.keys(t0, kRows);
  for (int64_t j0 = 0; j0 < keys; j0 += kCols) {
    __syncthreads();  // the previous tiles of k and v are no longer read
    load_rows(ks, kh, k.ld, j0, p.Sk, kCols, D);
    load_rows(vs, vh, v.ld, j0, p.Sk, kCols, D);
    __syncthreads();
    C s[kPerLane];
    dots(s, qs + row * ld, ks, D, lane);
    C mx = neg_inf;
#pragma unroll
    for (int x = 0; x < kPerLane; ++x) {
      s[x] = p.score(s[x], mask, t, j0 + lane + kLanes * x);
      mx = max_of(mx, s[x]);
    }
    const C m_new = max_of(m, row_max(mx));
    // While a row has seen only hidden keys its max stays -inf, and exp(-inf - -inf) is NaN.
    const bool none = m_new == neg_inf;
    const C alpha = none ? C(1) : math::exp(m - m_new);
    C sum = 0;
#pragma unroll
    for (int x = 0; x < kPerLane; ++x) {
      const C e = none ? C(0) : math::exp(s[x] - m_new);
      prow[lane + kLanes * x] = e;
      sum += e;
    }
    l = l * alpha + sum;
#pragma unroll
    for (int cc = 0; cc < kD / kLanes; ++cc) acc[cc] *= alpha;
    __syncwarp();  // the row's four lanes, all in this warp, read each other's probabilities
    accumulate<C, kD>(acc, prow, vs, D, lane);
    m = m_new;
  }
  l = row_sum(l);
  if (t >= p.Tq) return;
  const bool seen = m != neg_inf;
  T* o = out.at(b, h) + t * out.ld;
#pragma unroll
  for (int cc = 0; cc < kD / kLanes; ++cc) {
    const int col = lane + kLanes * cc;
    if (col < D) o[col] = T(seen ? acc[cc] / l : C(0));
  }
  if (lane == 0) lse[(b * p.H + h) * p.Tq + t] = seen ? m + math::log(l) : C(INFINITY);
}

// delta[b, h, t] = dO[b, h, t] . O[b, h, t], the softmax backward's row term: a warp per row.
template <typename T, typename C = compute_t<T>>
__global__ void row_dot_kernel(C* delta, Heads<const T> g, Heads<const T> o, int64_t H,
                               int64_t Tq, int D, int64_t rows) {
  const int64_t r = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;  // the whole warp leaves together
  const int64_t t = r % Tq, b = r / Tq / H, h = r / Tq % H;
  const T* gr = g.at(b, h) + t * g.ld;
  const T* orow = o.at(b, h) + t * o.ld;
  C s = 0;
  for (int c = lane; c < D; c += 32) s += C(gr[c]) * C(orow[c]);
  for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(kFullWarp, s, off);
  if (lane == 0) delta[r] = s;
}

// Block (b * H + h, query tile): dQ = scale * sum over key tiles of dS K, where
// P = exp(score - lse) and dS = P (dO V^T - delta). Shared: q and dO [kRows][D+1], k and v
// [kCols][D+1], dS [kRows][kCols+1].
template <typename T, int kD, int kRows, typename C = compute_t<T>>
__global__ void __launch_bounds__(kLanes * kRows)
    dq_kernel(Heads<T> dq, Heads<const T> q, Heads<const T> k, Heads<const T> v,
              Heads<const T> g, const C* lse, const C* delta, Problem<T> p) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int D = p.D, ld = D + 1;
  C* qs = reinterpret_cast<C*>(smem);
  C* gs = qs + kRows * ld;
  C* ks = gs + kRows * ld;
  C* vs = ks + kCols * ld;
  C* dss = vs + kCols * ld;
  const int64_t b = blockIdx.x / p.H, h = blockIdx.x % p.H, hk = h / p.group;
  const int64_t t0 = int64_t(blockIdx.y) * kRows;
  const int row = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  const int64_t t = t0 + row;
  const T* mask = p.mask_at(b, h);
  const T* kh = k.at(b, hk);
  const T* vh = v.at(b, hk);
  C* dsrow = dss + row * (kCols + 1);
  load_rows(qs, q.at(b, h), q.ld, t0, p.Tq, kRows, D);
  load_rows(gs, g.at(b, h), g.ld, t0, p.Tq, kRows, D);
  const int64_t r = (b * p.H + h) * p.Tq + t;
  // A tail row gets lse = +inf, so its probabilities are exp(-inf) = 0.
  const C lse_t = t < p.Tq ? lse[r] : C(INFINITY);
  const C delta_t = t < p.Tq ? delta[r] : C(0);

  C acc[kD / kLanes] = {};
  const int64_t keys = p.keys(t0, kRows);
  for (int64_t j0 = 0; j0 < keys; j0 += kCols) {
    __syncthreads();
    load_rows(ks, kh, k.ld, j0, p.Sk, kCols, D);
    load_rows(vs, vh, v.ld, j0, p.Sk, kCols, D);
    __syncthreads();
    C s[kPerLane], dp[kPerLane];
    dots(s, qs + row * ld, ks, D, lane);
    dots(dp, gs + row * ld, vs, D, lane);
#pragma unroll
    for (int x = 0; x < kPerLane; ++x) {
      const C pr = math::exp(p.score(s[x], mask, t, j0 + lane + kLanes * x) - lse_t);
      dsrow[lane + kLanes * x] = pr * (dp[x] - delta_t);
    }
    __syncwarp();
    accumulate<C, kD>(acc, dsrow, ks, D, lane);
  }
  if (t >= p.Tq) return;
  T* out = dq.at(b, h) + t * dq.ld;
#pragma unroll
  for (int cc = 0; cc < kD / kLanes; ++cc) {
    const int col = lane + kLanes * cc;
    if (col < D) out[col] = T(p.scale * acc[cc]);
  }
}

// Block (b * Hkv + hk, key tile): dV = sum P^T dO and dK = scale * sum dS^T Q over the query
// heads of the group in head order, each over its query tiles from the first that sees the
// tile. Shared: k and v [kRows][D+1], q and dO [kCols][D+1], P and dS [kRows][kCols+1] (row =
// key), lse and delta [kCols].
template <typename T, int kD, int kRows, typename C = compute_t<T>>
__global__ void __launch_bounds__(kLanes * kRows)
    dkdv_kernel(Heads<T> dk, Heads<T> dv, Heads<const T> q, Heads<const T> k, Heads<const T> v,
                Heads<const T> g, const C* lse, const C* delta, Problem<T> p) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int D = p.D, ld = D + 1;
  C* ks = reinterpret_cast<C*>(smem);
  C* vs = ks + kRows * ld;
  C* qs = vs + kRows * ld;
  C* gs = qs + kCols * ld;
  C* ps = gs + kCols * ld;
  C* dss = ps + kRows * (kCols + 1);
  C* ls = dss + kRows * (kCols + 1);
  C* dl = ls + kCols;
  const int64_t b = blockIdx.x / p.Hkv, hk = blockIdx.x % p.Hkv;
  const int64_t j0 = int64_t(blockIdx.y) * kRows;
  const int row = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  const int64_t j = j0 + row;
  C* prow = ps + row * (kCols + 1);
  C* dsrow = dss + row * (kCols + 1);
  load_rows(ks, k.at(b, hk), k.ld, j0, p.Sk, kRows, D);
  load_rows(vs, v.at(b, hk), v.ld, j0, p.Sk, kRows, D);

  C dk_acc[kD / kLanes] = {}, dv_acc[kD / kLanes] = {};
  // Query t sees key j iff j <= t + Sk - Tq: queries before this one see none of the tile.
  const int64_t first = p.causal ? (j0 + p.Tq - p.Sk > 0 ? j0 + p.Tq - p.Sk : 0) : 0;
  for (int gi = 0; gi < p.group; ++gi) {
    const int64_t h = hk * p.group + gi;
    const T* mask = p.mask_at(b, h);
    const C* lse_h = lse + (b * p.H + h) * p.Tq;
    const C* delta_h = delta + (b * p.H + h) * p.Tq;
    for (int64_t i0 = first; i0 < p.Tq; i0 += kCols) {
      __syncthreads();  // the previous query tile is no longer read
      load_rows(qs, q.at(b, h), q.ld, i0, p.Tq, kCols, D);
      load_rows(gs, g.at(b, h), g.ld, i0, p.Tq, kCols, D);
      for (int x = threadIdx.x; x < kCols; x += blockDim.x) {
        const bool in = i0 + x < p.Tq;
        ls[x] = in ? lse_h[i0 + x] : C(INFINITY);
        dl[x] = in ? delta_h[i0 + x] : C(0);
      }
      __syncthreads();
      C s[kPerLane], dp[kPerLane];
      dots(s, ks + row * ld, qs, D, lane);
      dots(dp, vs + row * ld, gs, D, lane);
#pragma unroll
      for (int x = 0; x < kPerLane; ++x) {
        const int c = lane + kLanes * x;
        const C pr = math::exp(p.score(s[x], mask, i0 + c, j) - ls[c]);
        prow[c] = pr;
        dsrow[c] = pr * (dp[x] - dl[c]);
      }
      __syncwarp();
      accumulate<C, kD>(dv_acc, prow, gs, D, lane);
      accumulate<C, kD>(dk_acc, dsrow, qs, D, lane);
    }
  }
  if (j >= p.Sk) return;
  T* dkr = dk.at(b, hk) + j * dk.ld;
  T* dvr = dv.at(b, hk) + j * dv.ld;
#pragma unroll
  for (int cc = 0; cc < kD / kLanes; ++cc) {
    const int col = lane + kLanes * cc;
    if (col < D) {
      dkr[col] = T(p.scale * dk_acc[cc]);
      dvr[col] = T(dv_acc[cc]);
    }
  }
}

// Query rows per block by compute type: f64 halves them to stay within shared memory and
// registers. The dK/dV kernel keeps two [rows, D] accumulators per thread and two score tiles,
// so it owns fewer.
template <typename C>
constexpr int kQueryRows = sizeof(C) == 4 ? 64 : 32;
constexpr int kKeyRows = 32;

template <typename T>
Problem<T> problem_of(const Tensor& q, const Tensor& k, bool causal, const Tensor& mask,
                      double scale) {
  Problem<T> p{q.size(1), k.size(1), q.size(2), k.size(2), int(q.size(3)),
               int(q.size(1) / k.size(1)), causal, compute_t<T>(scale), nullptr, 0, 0, 0, 0};
  if (mask.defined()) {
    p.mask = mask.data<T>();
    p.mb = mask.stride(0);
    p.mh = mask.stride(1);
    p.mt = mask.stride(2);
    p.ms = mask.stride(3);
  }
  return p;
}

// Calls f with the generic kernels' head-dim bound (32, 64 or 128) that covers D.
template <typename F>
void with_head_dim(int64_t D, F&& f) {
  if (D <= 32) {
    f(std::integral_constant<int, 32>{});
  } else if (D <= 64) {
    f(std::integral_constant<int, 64>{});
  } else {
    f(std::integral_constant<int, kMaxHeadDim>{});
  }
}

// Grid x: the (batch, head) pairs; y: the tiles of `rows` rows over n.
dim3 grid_of(int64_t heads, int64_t n, int rows, const char* op) {
  const int64_t tiles = (n + rows - 1) / rows;
  MOEGRAD_CHECK(heads <= INT_MAX && tiles <= 65535, op, ": ", heads, " heads of ", n,
                " rows are too many for one launch");
  return dim3(unsigned(heads), unsigned(tiles));
}

// The tiled kernels' geometry per head-dim bound kD (32, 64, 96 or 128): 64 owned rows by 64
// streamed ones, or 32 streamed ones where wide heads would leave room for a single block per
// SM; the last parameter is the blocks per SM that shared memory allows, which sets the register
// budget. Measured on an H100 (B 4, H 16, T 2048, causal), the best of the variants tried: more
// streamed rows, 128 query rows, or 256 threads per block were no faster. The dK/dV kernel of
// wide heads keeps two [64, kD] accumulators, so it spreads them over 256 threads.
template <int kD>
using ForwardTiles = std::conditional_t<kD <= 64, attention::Tiles<kD, 64, 64, 8, 128, 3>,
                                        attention::Tiles<kD, 64, 32, 8, 128, 2>>;
template <int kD>
using DqTiles = attention::Tiles<kD, 64, kD <= 64 ? 64 : 32, 8, 128, 2>;
template <int kD>
using DkDvTiles =
    std::conditional_t<kD <= 64, attention::Tiles<kD, 64, 64, 8, 128, kD == 32 ? 3 : 2>,
                       attention::Tiles<kD, 64, 64, kD == 128 ? 16 : 8, 256, 1>>;

template <class C>
constexpr size_t forward_smem() {
  return sizeof(float) * ((C::kRows + 2 * C::kCols) * C::kLd + C::kRows * C::kLs);
}
template <class C>
constexpr size_t dq_smem() {
  return sizeof(float) * (2 * (C::kRows + C::kCols) * C::kLd + C::kRows * C::kLs);
}
template <class C>
constexpr size_t dkdv_smem() {
  return sizeof(float) * (2 * (C::kRows + C::kCols) * C::kLd + 2 * C::kRows * C::kLs);
}

// The bf16 kernels' geometry per head-dim bound: 64 owned rows (16 per warp) by 64 streamed
// ones, or 32 in the backward of wide heads, where 64 spills far more registers (nvcc 13,
// sm_90: at head dim 128 the forward still spills 24 bytes a thread, dK/dV 12). Not yet tuned
// on a GPU.
template <int kD>
using MmaForwardTiles = attention::MmaTiles<kD, 64, 2>;
template <int kD>
using MmaBackwardTiles = attention::MmaTiles<kD, kD <= 64 ? 64 : 32, kD <= 64 ? 2 : 1>;

template <class C>
constexpr size_t mma_forward_smem() {
  return sizeof(bf16) * (C::kRows + 2 * C::kCols) * C::kLd;
}
template <class C>
constexpr size_t mma_dq_smem() {
  return sizeof(bf16) * 2 * (C::kRows + C::kCols) * C::kLd;
}
template <class C>
constexpr size_t mma_dkdv_smem() {
  return mma_dq_smem<C>() + sizeof(float) * 2 * C::kCols;
}

// Whether the tiled kernels can read t: f32 or bf16 rows of groups of 4 elements aligned to
// their size (cp.async's 16 or 8 bytes).
bool tileable(const Tensor& t) {
  if ((t.dtype() != DType::F32 && t.dtype() != DType::BF16) || t.size(3) % 4 != 0) return false;
  const int64_t ld = t.size(2) == 1 ? t.size(3) : t.stride(2);
  const uintptr_t group_bytes = 4 * dtype_size(t.dtype());
  return reinterpret_cast<uintptr_t>(t.data_ptr()) % group_bytes == 0 && t.stride(0) % 4 == 0 &&
         t.stride(1) % 4 == 0 && ld % 4 == 0;
}

// Calls f with the tiled kernels' head-dim bound (32, 64, 96 or 128) that covers D; the columns
// past D read as zeros.
template <typename F>
void with_tiled_head_dim(int64_t D, F&& f) {
  if (D <= 32) {
    f(std::integral_constant<int, 32>{});
  } else if (D <= 64) {
    f(std::integral_constant<int, 64>{});
  } else if (D <= 96) {
    f(std::integral_constant<int, 96>{});
  } else {
    f(std::integral_constant<int, kMaxHeadDim>{});
  }
}

}  // namespace

void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                       const Tensor& v, bool causal, const Tensor& mask, double scale) {
  const char* op = "scaled_dot_product_attention";
  const int64_t D = q.size(3);
  MOEGRAD_CHECK(D <= kMaxHeadDim, op, ": the CUDA kernels support head dims up to ", kMaxHeadDim,
                ", got ", D);
  const int device = q.device().index;
  const bool tiled = tileable(q) && tileable(k) && tileable(v) && tileable(out);
  dispatch_compute(q.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const Problem<T> p = problem_of<T>(q, k, causal, mask, scale);
    if constexpr (std::is_same_v<T, bf16>) {
      if (tiled) {
        with_tiled_head_dim(D, [&](auto dim) {
          using Tile = MmaForwardTiles<decltype(dim)::value>;
          launch(attention::forward_mma<Tile>,
                 grid_of(q.size(0) * q.size(1), q.size(2), Tile::kRows, op), Tile::kThreads,
                 mma_forward_smem<Tile>(), device, heads_of<T>(out), lse.data<float>(),
                 heads_of<const T>(q), heads_of<const T>(k), heads_of<const T>(v), p);
        });
        return;
      }
    } else if constexpr (std::is_same_v<T, float>) {
      if (tiled) {
        with_tiled_head_dim(D, [&](auto dim) {
          using Tile = ForwardTiles<decltype(dim)::value>;
          launch(attention::forward_tiled<Tile>,
                 grid_of(q.size(0) * q.size(1), q.size(2), Tile::kRows, op), Tile::kThreads,
                 forward_smem<Tile>(), device, heads_of<T>(out), lse.data<float>(),
                 heads_of<const T>(q), heads_of<const T>(k), heads_of<const T>(v), p);
        });
        return;
      }
    }
    with_head_dim(D, [&](auto dim) {
      constexpr int kD = decltype(dim)::value, kRows = kQueryRows<C>;
      const size_t ld = size_t(D) + 1;
      const size_t smem = (kRows + 2 * kCols) * ld + kRows * (kCols + 1);
      launch(forward_kernel<T, kD, kRows>, grid_of(q.size(0) * q.size(1), q.size(2), kRows, op),
             kLanes * kRows, smem * sizeof(C), device, heads_of<T>(out), lse.data<C>(),
             heads_of<const T>(q), heads_of<const T>(k), heads_of<const T>(v), p);
    });
  });
}

void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, bool causal, const Tensor& mask, double scale) {
  const char* op = "scaled_dot_product_attention_backward";
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3);
  MOEGRAD_CHECK(D <= kMaxHeadDim, op, ": the CUDA kernels support head dims up to ", kMaxHeadDim,
                ", got ", D);
  const int device = q.device().index;
  const bool tiled = tileable(q) && tileable(k) && tileable(v) && tileable(grad) && tileable(dq) &&
                     tileable(dk) && tileable(dv);
  dispatch_compute(q.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const Problem<T> p = problem_of<T>(q, k, causal, mask, scale);
    const Heads<const T> Q = heads_of<const T>(q), K = heads_of<const T>(k),
                         V = heads_of<const T>(v), G = heads_of<const T>(grad);
    Tensor delta = empty({B, H, Tq}, dtype_v<C>, q.device());
    const int64_t rows = B * H * Tq;
    constexpr int kWarps = kBlock / 32;
    if (rows > 0) {
      row_dot_kernel<T><<<unsigned((rows + kWarps - 1) / kWarps), kBlock, 0, stream(device)>>>(
          delta.data<C>(), G, heads_of<const T>(out), H, Tq, int(D), rows);
      MOEGRAD_CUDA_CHECK_LAUNCH();
    }
    if constexpr (std::is_same_v<T, bf16>) {
      if (tiled) {
        with_tiled_head_dim(D, [&](auto dim) {
          constexpr int kD = decltype(dim)::value;
          using Tile = MmaBackwardTiles<kD>;
          launch(attention::dq_mma<Tile>, grid_of(B * H, Tq, Tile::kRows, op), Tile::kThreads,
                 mma_dq_smem<Tile>(), device, heads_of<T>(dq), Q, K, V, G, lse.data<float>(),
                 delta.data<float>(), p);
          launch(attention::dkdv_mma<Tile>, grid_of(B * k.size(1), k.size(2), Tile::kRows, op),
                 Tile::kThreads, mma_dkdv_smem<Tile>(), device, heads_of<T>(dk),
                 heads_of<T>(dv), Q, K, V, G, lse.data<float>(), delta.data<float>(), p);
        });
        return;
      }
    } else if constexpr (std::is_same_v<T, float>) {
      if (tiled) {
        with_tiled_head_dim(D, [&](auto dim) {
          constexpr int kD = decltype(dim)::value;
          using Cq = DqTiles<kD>;
          using Ckv = DkDvTiles<kD>;
          launch(attention::dq_tiled<Cq>, grid_of(B * H, Tq, Cq::kRows, op), Cq::kThreads,
                 dq_smem<Cq>(), device, heads_of<T>(dq), Q, K, V, G, lse.data<float>(),
                 delta.data<float>(), p);
          launch(attention::dkdv_tiled<Ckv>, grid_of(B * k.size(1), k.size(2), Ckv::kRows, op),
                 Ckv::kThreads, dkdv_smem<Ckv>(), device, heads_of<T>(dk), heads_of<T>(dv), Q, K,
                 V, G, lse.data<float>(), delta.data<float>(), p);
        });
        return;
      }
    }
    with_head_dim(D, [&](auto dim) {
      constexpr int kD = decltype(dim)::value, kRows = kQueryRows<C>;
      const size_t ld = size_t(D) + 1;
      launch(dq_kernel<T, kD, kRows>, grid_of(B * H, Tq, kRows, op), kLanes * kRows,
             ((2 * kRows + 2 * kCols) * ld + kRows * (kCols + 1)) * sizeof(C), device,
             heads_of<T>(dq), Q, K, V, G, lse.data<C>(), delta.data<C>(), p);
      launch(dkdv_kernel<T, kD, kKeyRows>, grid_of(B * k.size(1), k.size(2), kKeyRows, op),
             kLanes * kKeyRows,
             ((2 * kKeyRows + 2 * kCols) * ld + 2 * kKeyRows * (kCols + 1) + 2 * kCols) *
                 sizeof(C),
             device, heads_of<T>(dk), heads_of<T>(dv), Q, K, V, G, lse.data<C>(),
             delta.data<C>(), p);
    });
  });
}

}  // namespace moegrad::cuda
