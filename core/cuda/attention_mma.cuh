// The bf16 kernels of core/ops/attention_cuda.cu: the loops of the tiled f32 kernels
// (attention_tiles.cuh) with their products on the tensor cores, mma.sync m16n8k16 (bf16 in, f32
// accumulate), FlashAttention-2's way. A block of 4 warps owns 64 rows, 16 per warp (an mma's
// M), and streams kCols rows of the other side through shared memory, kept in bf16. A warp's
// scores stay in registers: an mma's f32 result fragment is laid out like the bf16 operand
// fragment of the next product, so the probabilities (and dS) are rounded to bf16 in place and
// fed to it, as FlashAttention does. Softmax, lse and delta stay f32; each output is rounded once.
// Every sum runs in a fixed order and every output element has one writer: results are
// bit-identical run to run. The fragments and their coordinates: core/cuda/mma.cuh.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "core/cuda/attention_tiles.cuh"
#include "core/cuda/mma.cuh"

namespace moegrad::cuda::attention {

// A block owns kRows = 64 rows, 16 per warp, and streams kCols rows per step. Shared tiles are
// bf16 rows kD + 8 apart: the 16 bytes of padding put the 8 rows that a fragment load or an
// ldmatrix phase reads in distinct banks.
template <int D, int Cols, int MinBlocks>
struct MmaTiles {
  static constexpr int kD = D, kRows = 64, kCols = Cols, kThreads = 128, kMinBlocks = MinBlocks;
  static constexpr int kLd = D + 8;
  static constexpr int kDK = D / 16;     // mma k-steps over the head dim
  static constexpr int kDN = D / 8;      // n-tiles of a warp's [16, D] accumulator
  static constexpr int kSN = Cols / 8;   // n-tiles of a warp's [16, kCols] scores
  static constexpr int kSK = Cols / 16;  // k-steps over the streamed rows
  static_assert(D % 16 == 0 && Cols % 16 == 0 && kThreads == 32 * kRows / 16);
};

// s[n] += a[r0 + i] . b[8n + j] over the head dim for the warp's 16 rows i and the streamed
// rows j: a and b are [rows][kLd] tiles, so b's rows are the column-major B operand as stored.
template <class C>
__device__ __forceinline__ void scores(float (&s)[C::kSN][4], const bf16* a, const bf16* b,
                                       int r0, const FragLane& f) {
#pragma unroll
  for (int kk = 0; kk < C::kDK; ++kk) {
    uint32_t af[4];
    frag_a<C::kLd>(af, a, r0, 16 * kk, f);
#pragma unroll
    for (int n = 0; n < C::kSN; ++n) {
      const bf16* p = b + (8 * n + f.row) * C::kLd + 16 * kk + f.col;
      mma_bf16(s[n], af, ld_pair(p), ld_pair(p + 8));
    }
  }
}

// acc += w b: w is a warp's [16, kCols] score fragments (rounded to bf16 here), b a
// [kCols][kLd] tile.
template <class C>
__device__ __forceinline__ void accumulate(float (&acc)[C::kDN][4], const float (&w)[C::kSN][4],
                                           const bf16* b, const FragLane& f) {
#pragma unroll
  for (int kk = 0; kk < C::kSK; ++kk) {
    const uint32_t a[4] = {pack_pair(w[2 * kk][0], w[2 * kk][1]),
                           pack_pair(w[2 * kk][2], w[2 * kk][3]),
                           pack_pair(w[2 * kk + 1][0], w[2 * kk + 1][1]),
                           pack_pair(w[2 * kk + 1][2], w[2 * kk + 1][3])};
#pragma unroll
    for (int dn = 0; dn < C::kDN; dn += 2) {
      uint32_t bf[4];
      frag_b_trans<C::kLd>(bf, b, 16 * kk, 8 * dn, f);
      mma_bf16(acc[dn], a, bf[0], bf[1]);
      mma_bf16(acc[dn + 1], a, bf[2], bf[3]);
    }
  }
}

// Rows [row0, row0 + 16) of a warp's [16, kD] accumulator, row half h times scale[h], to dst
// (row stride ld) in bf16; rows past n and columns past D skipped.
template <class C>
__device__ __forceinline__ void store_frag(bf16* dst, int64_t ld, int64_t row0, int64_t n, int D,
                                           const float (&acc)[C::kDN][4], const float (&scale)[2],
                                           const FragLane& f) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t row = row0 + f.row + 8 * h;
    if (row >= n) continue;
#pragma unroll
    for (int dn = 0; dn < C::kDN; ++dn) {
      const int col = 8 * dn + f.col;
      if (col >= D) continue;
      *reinterpret_cast<uint32_t*>(dst + row * ld + col) =
          pack_pair(acc[dn][2 * h] * scale[h], acc[dn][2 * h + 1] * scale[h]);
    }
  }
}

// Block (b * H + h, query tile, the latest first): online softmax over the key tiles up to the
// causal limit, each warp over its 16 query rows. Shared: q [kRows][kLd], k and v [kCols][kLd];
// cp.async groups as in forward_tiled: {q, k_0}, {v_0}, then per step {k_next}, {v_next}.
template <class C>
__global__ void __launch_bounds__(C::kThreads, C::kMinBlocks)
    forward_mma(Heads<bf16> out, float* lse, Heads<const bf16> q, Heads<const bf16> k,
                Heads<const bf16> v, Problem<bf16> p) {
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* qs = reinterpret_cast<bf16*>(smem);
  bf16* ks = qs + C::kRows * C::kLd;
  bf16* vs = ks + C::kCols * C::kLd;
  const auto [b, h, hk, t0, mask, keys] = QueryBlock<bf16>(p, C::kRows);
  const FragLane f;
  const int r0 = int(threadIdx.x / 32) * 16;
  const bf16* kh = k.at(b, hk);
  const bf16* vh = v.at(b, hk);
  load_tile<C, C::kRows>(qs, q.at(b, h), q.ld, t0, p.Tq, p.D);
  load_tile<C, C::kCols>(ks, kh, k.ld, 0, p.Sk, p.D);
  cp_async_commit();
  load_tile<C, C::kCols>(vs, vh, v.ld, 0, p.Sk, p.D);
  cp_async_commit();

  const float neg_inf = -INFINITY;
  float m[2] = {neg_inf, neg_inf}, l[2] = {0, 0};
  float acc[C::kDN][4] = {};
  for (int64_t j0 = 0; j0 < keys; j0 += C::kCols) {
    const bool more = j0 + C::kCols < keys;
    cp_async_wait<1>();
    __syncthreads();
    float s[C::kSN][4] = {};
    scores<C>(s, qs, ks, r0, f);
    __syncthreads();  // k is no longer read
    if (more) load_tile<C, C::kCols>(ks, kh, k.ld, j0 + C::kCols, p.Sk, p.D);
    cp_async_commit();

    const bool edge = p.edge(t0 + r0, 16, j0, C::kCols);
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const int64_t t = t0 + r0 + f.row + 8 * hf;
      float mx = neg_inf;
#pragma unroll
      for (int n = 0; n < C::kSN; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& x = s[n][2 * hf + e];
          x = edge ? p.score(x, mask, t, j0 + 8 * n + f.col + e) : p.scale * x;
          mx = max_of(mx, x);
        }
      // The four lanes of a quad hold the row's columns.
      const float m_new = max_of(m[hf], row_max<4>(mx));
      // While a row has seen only hidden keys its max stays -inf, and exp(-inf - -inf) is NaN.
      const bool none = m_new == neg_inf;
      const float alpha = none ? 1.0f : expf(m[hf] - m_new);
      float sum = 0;
#pragma unroll
      for (int n = 0; n < C::kSN; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& x = s[n][2 * hf + e];
          x = none ? 0.0f : expf(x - m_new);
          sum += x;
        }
      l[hf] = l[hf] * alpha + sum;
      m[hf] = m_new;
#pragma unroll
      for (int dn = 0; dn < C::kDN; ++dn) {
        acc[dn][2 * hf] *= alpha;
        acc[dn][2 * hf + 1] *= alpha;
      }
    }
    cp_async_wait<1>();
    __syncthreads();  // v has landed
    accumulate<C>(acc, s, vs, f);
    __syncthreads();  // v is no longer read
    if (more) load_tile<C, C::kCols>(vs, vh, v.ld, j0 + C::kCols, p.Sk, p.D);
    cp_async_commit();
  }
  cp_async_wait<0>();  // nothing may be in flight into shared memory when the block exits

  float inv[2];
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const float total = row_sum<4>(l[hf]);
    const bool seen = m[hf] != neg_inf;
    inv[hf] = seen ? 1.0f / total : 0.0f;
    const int64_t t = t0 + r0 + f.row + 8 * hf;
    if (f.col == 0 && t < p.Tq)
      lse[(b * p.H + h) * p.Tq + t] = seen ? m[hf] + logf(total) : INFINITY;
  }
  store_frag<C>(out.at(b, h), out.ld, t0 + r0, p.Tq, p.D, acc, inv, f);
}

// Block (b * H + h, query tile, the latest first): dQ = scale * sum over key tiles of dS K,
// where P = exp(score - lse) and dS = P (dO V^T - delta). Shared: q and dO [kRows][kLd], k and
// v [kCols][kLd]; cp.async groups as in dq_tiled: {q, dO, v_0}, {k_0}, then per step {v_next},
// {k_next}.
template <class C>
__global__ void __launch_bounds__(C::kThreads, C::kMinBlocks)
    dq_mma(Heads<bf16> dq, Heads<const bf16> q, Heads<const bf16> k, Heads<const bf16> v,
           Heads<const bf16> g, const float* lse, const float* delta, Problem<bf16> p) {
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* qs = reinterpret_cast<bf16*>(smem);
  bf16* gs = qs + C::kRows * C::kLd;
  bf16* ks = gs + C::kRows * C::kLd;
  bf16* vs = ks + C::kCols * C::kLd;
  const auto [b, h, hk, t0, mask, keys] = QueryBlock<bf16>(p, C::kRows);
  const FragLane f;
  const int r0 = int(threadIdx.x / 32) * 16;
  const bf16* kh = k.at(b, hk);
  const bf16* vh = v.at(b, hk);
  load_tile<C, C::kRows>(qs, q.at(b, h), q.ld, t0, p.Tq, p.D);
  load_tile<C, C::kRows>(gs, g.at(b, h), g.ld, t0, p.Tq, p.D);
  load_tile<C, C::kCols>(vs, vh, v.ld, 0, p.Sk, p.D);
  cp_async_commit();
  load_tile<C, C::kCols>(ks, kh, k.ld, 0, p.Sk, p.D);
  cp_async_commit();

  // A tail row gets lse = +inf, so its probabilities are exp(-inf) = 0.
  float lse_r[2], delta_r[2];
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const int64_t t = t0 + r0 + f.row + 8 * hf, r = (b * p.H + h) * p.Tq + t;
    lse_r[hf] = t < p.Tq ? lse[r] : INFINITY;
    delta_r[hf] = t < p.Tq ? delta[r] : 0.0f;
  }
  float acc[C::kDN][4] = {};
  for (int64_t j0 = 0; j0 < keys; j0 += C::kCols) {
    const bool more = j0 + C::kCols < keys;
    cp_async_wait<1>();
    __syncthreads();  // q, dO and v have landed
    float dp[C::kSN][4] = {};
    scores<C>(dp, gs, vs, r0, f);
    __syncthreads();  // v is no longer read
    if (more) load_tile<C, C::kCols>(vs, vh, v.ld, j0 + C::kCols, p.Sk, p.D);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();  // k has landed
    float s[C::kSN][4] = {};
    scores<C>(s, qs, ks, r0, f);
    const bool edge = p.edge(t0 + r0, 16, j0, C::kCols);
#pragma unroll
    for (int n = 0; n < C::kSN; ++n)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int hf = i / 2;
        const int64_t t = t0 + r0 + f.row + 8 * hf, j = j0 + 8 * n + f.col + i % 2;
        const float x = edge ? p.score(s[n][i], mask, t, j) : p.scale * s[n][i];
        s[n][i] = expf(x - lse_r[hf]) * (dp[n][i] - delta_r[hf]);
      }
    accumulate<C>(acc, s, ks, f);
    __syncthreads();  // k is no longer read
    if (more) load_tile<C, C::kCols>(ks, kh, k.ld, j0 + C::kCols, p.Sk, p.D);
    cp_async_commit();
  }
  cp_async_wait<0>();
  const float scale[2] = {p.scale, p.scale};
  store_frag<C>(dq.at(b, h), dq.ld, t0 + r0, p.Tq, p.D, acc, scale, f);
}

// Block (b * Hkv + hk, key tile): dV = sum P^T dO and dK = scale * sum dS^T Q over the query
// heads of the group in head order, each over its query tiles from the first that sees the key
// tile; each warp owns 16 keys. Shared: k and v [kRows][kLd], q and dO [kCols][kLd], the query
// tile's lse and delta [kCols] (f32); cp.async groups as in dkdv_tiled: {k, v, q_0}, {dO_0}, then
// per step {q_next}, {dO_next}.
template <class C>
__global__ void __launch_bounds__(C::kThreads, C::kMinBlocks)
    dkdv_mma(Heads<bf16> dk, Heads<bf16> dv, Heads<const bf16> q, Heads<const bf16> k,
             Heads<const bf16> v, Heads<const bf16> g, const float* lse, const float* delta,
             Problem<bf16> p) {
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* ks = reinterpret_cast<bf16*>(smem);
  bf16* vs = ks + C::kRows * C::kLd;
  bf16* qs = vs + C::kRows * C::kLd;
  bf16* gs = qs + C::kCols * C::kLd;
  float* lse_s = reinterpret_cast<float*>(gs + C::kCols * C::kLd);
  float* delta_s = lse_s + C::kCols;
  const KeyBlock blk(p, C::kRows, C::kCols);
  const int64_t b = blk.b, hk = blk.hk, j0 = blk.j0;
  const FragLane f;
  const int r0 = int(threadIdx.x / 32) * 16;
  load_tile<C, C::kRows>(ks, k.at(b, hk), k.ld, j0, p.Sk, p.D);
  load_tile<C, C::kRows>(vs, v.at(b, hk), v.ld, j0, p.Sk, p.D);
  load_step<C>(qs, q, blk, 0, p);
  cp_async_commit();
  load_step<C>(gs, g, blk, 0, p);
  cp_async_commit();

  float dk_acc[C::kDN][4] = {}, dv_acc[C::kDN][4] = {};
  for (int64_t st = 0; st < blk.steps; ++st) {
    const int64_t h = blk.head(st), i0 = blk.row(st);
    const bf16* mask = p.mask_at(b, h);
    // The last step's reads of lse and delta ended before its "q is no longer read" barrier. A
    // tail query gets lse = +inf, so its probabilities are exp(-inf) = 0.
    if (threadIdx.x < C::kCols) {
      const int64_t t = i0 + threadIdx.x, r = (b * p.H + h) * p.Tq + t;
      lse_s[threadIdx.x] = t < p.Tq ? lse[r] : INFINITY;
      delta_s[threadIdx.x] = t < p.Tq ? delta[r] : 0.0f;
    }
    cp_async_wait<1>();
    __syncthreads();  // q has landed
    float s[C::kSN][4] = {};
    scores<C>(s, ks, qs, r0, f);
    cp_async_wait<0>();
    __syncthreads();  // dO has landed
    float ds[C::kSN][4] = {};
    scores<C>(ds, vs, gs, r0, f);
    const bool edge = p.edge(i0, C::kCols, j0 + r0, 16);
#pragma unroll
    for (int n = 0; n < C::kSN; ++n)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int col = 8 * n + f.col + i % 2;
        const int64_t j = j0 + r0 + f.row + 8 * (i / 2);
        const float x = edge ? p.score(s[n][i], mask, i0 + col, j) : p.scale * s[n][i];
        s[n][i] = expf(x - lse_s[col]);
        ds[n][i] = s[n][i] * (ds[n][i] - delta_s[col]);
      }
    accumulate<C>(dk_acc, ds, qs, f);
    __syncthreads();  // q is no longer read
    load_step<C>(qs, q, blk, st + 1, p);
    cp_async_commit();
    accumulate<C>(dv_acc, s, gs, f);
    __syncthreads();  // dO is no longer read
    load_step<C>(gs, g, blk, st + 1, p);
    cp_async_commit();
  }
  cp_async_wait<0>();
  const float dk_scale[2] = {p.scale, p.scale}, dv_scale[2] = {1.0f, 1.0f};
  store_frag<C>(dk.at(b, hk), dk.ld, j0 + r0, p.Sk, p.D, dk_acc, dk_scale, f);
  store_frag<C>(dv.at(b, hk), dv.ld, j0 + r0, p.Sk, p.D, dv_acc, dv_scale, f);
}

}  // namespace moegrad::cuda::attention
