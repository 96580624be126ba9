// The pieces of core/ops/attention_cuda.cu's kernels: the per-head views and the problem's
// masking rule, which its generic kernels share, the shared-memory tile loads, and the tiled
// f32 kernels of the common case (head dim a multiple of 4, rows aligned to 4 elements),
// FlashAttention-2's loops in plain f32 FMAs (tensor cores' TF32 would lose the CPU parity): a
// block owns a tile of rows, the other side streams through shared memory, and each thread
// accumulates a register micro-tile of the scores and of the outputs. Every sum runs in a fixed
// order and every output element has one writer: results are bit-identical run to run. bf16
// takes the same loops on the tensor cores (core/cuda/attention_mma.cuh).
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "core/cuda/mma.cuh"
#include "core/dtype.h"

namespace moegrad::cuda::attention {

constexpr unsigned kFullWarp = 0xffffffffu;

// One [rows, D] matrix per (batch, head) of a 4-d tensor with unit stride along D.
template <typename T>
struct Heads {
  T* base;
  int64_t sb, sh, ld;
  __device__ T* at(int64_t b, int64_t h) const { return base + b * sb + h * sh; }
};

// T: the storage type of the operands and the mask; scores are computed in compute_t<T>.
template <typename T>
struct Problem {
  using C = compute_t<T>;
  int64_t H, Hkv, Tq, Sk;
  int D, group;
  bool causal;
  C scale;
  const T* mask;            // the [B, H, Tq, Sk] view, or null
  int64_t mb, mh, mt, ms;   // its strides (0 along broadcast dims)

  __device__ const T* mask_at(int64_t b, int64_t h) const {
    return mask ? mask + b * mb + h * mh : nullptr;
  }
  // Query t's score against key j from their dot product; -inf where the key is hidden or
  // either index lies in a tile's tail past the end.
  __device__ C score(C dot, const T* mask_bh, int64_t t, int64_t j) const {
    if (t >= Tq || j >= Sk || (causal && j > t + Sk - Tq)) return -C(INFINITY);
    const C s = scale * dot;
    return mask_bh ? s + C(mask_bh[t * mt + j * ms]) : s;
  }
  // Keys that query rows [t0, t0 + rows) may see, counted from key 0.
  __device__ int64_t keys(int64_t t0, int rows) const {
    if (!causal) return Sk;
    const int64_t last = (t0 + rows < Tq ? t0 + rows : Tq) + Sk - Tq;
    return last < 0 ? 0 : (last > Sk ? Sk : last);
  }
  // Whether a tile of queries [t0, t0 + nt) against keys [j0, j0 + nj) needs score(): some pair
  // is masked, hidden by causality (its first query against its last key) or past an end.
  // Elsewhere a score is scale * dot, the value score() would give.
  __device__ bool edge(int64_t t0, int nt, int64_t j0, int nj) const {
    return mask || t0 + nt > Tq || j0 + nj > Sk || (causal && j0 + nj - 1 > t0 + Sk - Tq);
  }
};

template <typename T>
__device__ __forceinline__ T max_of(T a, T b) {
  return a > b ? a : b;
}

// A forward or dQ block's batch, head, kv head, first query, mask rows and the keys its queries
// may see: grid x is b * H + h, grid y the query tiles of `rows`, the latest first (causal tiles
// late in the sequence cost most, and the grid's tail should be the cheap ones).
template <typename T>
struct QueryBlock {
  int64_t b, h, hk, t0;
  const T* mask;
  int64_t keys;
  __device__ QueryBlock(const Problem<T>& p, int rows)
      : b(blockIdx.x / p.H),
        h(blockIdx.x % p.H),
        hk(h / p.group),
        t0(int64_t(gridDim.y - 1 - blockIdx.y) * rows),
        mask(p.mask_at(b, h)),
        keys(p.keys(t0, rows)) {}
};

// A dK/dV block's batch, kv head and first key (grid x is b * Hkv + hk, grid y the key tiles of
// `rows`), and the query tiles of `cols` rows it streams past them: over the query heads of the
// group in head order, each from the first query that sees the tile (query t sees key j iff
// j <= t + Sk - Tq) to the end. Step st is query head head(st)'s tile starting at row(st).
struct KeyBlock {
  int64_t b, hk, j0, first, tiles, steps, head0;
  int cols;
  template <typename T>
  __device__ KeyBlock(const Problem<T>& p, int rows, int cols_)
      : b(blockIdx.x / p.Hkv),
        hk(blockIdx.x % p.Hkv),
        j0(int64_t(blockIdx.y) * rows),
        first(p.causal ? max_of<int64_t>(j0 + p.Tq - p.Sk, 0) : 0),
        tiles(first < p.Tq ? (p.Tq - first + cols_ - 1) / cols_ : 0),
        steps(tiles * p.group),
        head0(hk * p.group),
        cols(cols_) {}
  __device__ int64_t head(int64_t st) const { return head0 + st / tiles; }
  __device__ int64_t row(int64_t st) const { return first + st % tiles * cols; }
};

// Geometry of a tiled kernel: a block of kThreads owns kRows rows ([kRows, D] operands) and
// streams kCols rows of the other side per step. Thread (ty, tx) = (tid / kCT, tid % kCT)
// holds owned rows ty + kRT i, score columns tx + kCT c, and the float4 column groups
// 4 (tx + kCT g) of a [kRows, D] accumulator: interleaving makes a warp's shared loads hit
// distinct rows (banks) and its global stores contiguous.
template <int D, int Rows, int Cols, int CT, int Threads, int MinBlocks>
struct Tiles {
  static constexpr int kD = D, kRows = Rows, kCols = Cols, kCT = CT, kThreads = Threads;
  // Blocks per SM that shared memory allows: the register budget is set to fit as many.
  static constexpr int kMinBlocks = MinBlocks;
  static constexpr int kRT = Threads / CT;
  static constexpr int kTM = Rows / kRT;    // owned rows per thread
  static constexpr int kTN = Cols / CT;     // score columns per thread
  static constexpr int kTD = D / (4 * CT);  // float4 accumulator column groups per thread
  // Row strides of [n, D] tiles and of [kRows, kCols] score tiles: 4 floats of padding puts
  // consecutive rows' float4s in distinct banks; kCT of padding does the same for the score
  // stores of the 32 / kCT row groups of a warp.
  static constexpr int kLd = D + 4, kLs = Cols + CT;
  static_assert(Threads % 32 == 0 && 32 % CT == 0 && Rows % kRT == 0 && Cols % CT == 0 &&
                D % (4 * CT) == 0);
};

// Stores four consecutive f32 outputs (16 bytes, aligned).
__device__ __forceinline__ void store4(float* dst, float4 v) {
  *reinterpret_cast<float4*>(dst) = v;
}

// Starts copying rows [row0, row0 + N) of a [n, D] matrix (row stride ld) into an [N, kLd]
// tile of the same type, by cp.async in groups of 4 elements (waited on with cp_async_wait);
// rows past n and columns past D (up to kD) read as 0.
template <class C, int N, typename T>
__device__ __forceinline__ void load_tile(T* tile, const T* src, int64_t ld, int64_t row0,
                                          int64_t n, int D) {
  constexpr int kChunks = C::kD / 4;
#pragma unroll
  for (int it = 0; it < (N * kChunks + C::kThreads - 1) / C::kThreads; ++it) {
    const int i = it * C::kThreads + int(threadIdx.x);
    if (N * kChunks % C::kThreads != 0 && i >= N * kChunks) break;
    const int r = i / kChunks, c = i % kChunks * 4;
    const int64_t row = row0 + r;
    const bool valid = row < n && c < D;
    cp_async<4 * sizeof(T)>(tile + r * C::kLd + c, valid ? src + row * ld + c : src, valid);
  }
}

// Starts loading step st's query rows of src (q or dO) into a [kCols, kLd] tile; nothing past
// the block's last step.
template <class C, typename T>
__device__ __forceinline__ void load_step(T* tile, const Heads<const T>& src, const KeyBlock& blk,
                                          int64_t st, const Problem<T>& p) {
  if (st < blk.steps)
    load_tile<C, C::kCols>(tile, src.at(blk.b, blk.head(st)), src.ld, blk.row(st), p.Tq, p.D);
}

__device__ __forceinline__ float component(const float4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// s[i][c] += a[ty + kRT i] . b[tx + kCT c] over kD: a is [., kLd] (owned rows), b [kCols, kLd].
template <class C>
__device__ __forceinline__ void mma_nt(float (&s)[C::kTM][C::kTN], const float* a, const float* b,
                                       int ty, int tx) {
#pragma unroll 2
  for (int d = 0; d < C::kD; d += 4) {
    float4 av[C::kTM], bv[C::kTN];
#pragma unroll
    for (int i = 0; i < C::kTM; ++i)
      av[i] = *reinterpret_cast<const float4*>(a + (ty + C::kRT * i) * C::kLd + d);
#pragma unroll
    for (int c = 0; c < C::kTN; ++c)
      bv[c] = *reinterpret_cast<const float4*>(b + (tx + C::kCT * c) * C::kLd + d);
#pragma unroll
    for (int i = 0; i < C::kTM; ++i)
#pragma unroll
      for (int c = 0; c < C::kTN; ++c) {
        s[i][c] = fmaf(av[i].x, bv[c].x, s[i][c]);
        s[i][c] = fmaf(av[i].y, bv[c].y, s[i][c]);
        s[i][c] = fmaf(av[i].z, bv[c].z, s[i][c]);
        s[i][c] = fmaf(av[i].w, bv[c].w, s[i][c]);
      }
  }
}

// acc[i][g] += sum over x of w[ty + kRT i][x] * b[x][4 (tx + kCT g) ..+4], x in order:
// w is a [kRows, kLs] score tile, b [kCols, kLd].
template <class C>
__device__ __forceinline__ void mma_nn(float4 (&acc)[C::kTM][C::kTD], const float* w,
                                       const float* b, int ty, int tx) {
#pragma unroll 2
  for (int x = 0; x < C::kCols; x += 4) {
    float4 wv[C::kTM];
#pragma unroll
    for (int i = 0; i < C::kTM; ++i)
      wv[i] = *reinterpret_cast<const float4*>(w + (ty + C::kRT * i) * C::kLs + x);
#pragma unroll
    for (int xx = 0; xx < 4; ++xx) {
      float4 bv[C::kTD];
#pragma unroll
      for (int g = 0; g < C::kTD; ++g)
        bv[g] = *reinterpret_cast<const float4*>(b + (x + xx) * C::kLd + 4 * (tx + C::kCT * g));
#pragma unroll
      for (int i = 0; i < C::kTM; ++i) {
        const float wi = component(wv[i], xx);
#pragma unroll
        for (int g = 0; g < C::kTD; ++g) {
          acc[i][g].x = fmaf(wi, bv[g].x, acc[i][g].x);
          acc[i][g].y = fmaf(wi, bv[g].y, acc[i][g].y);
          acc[i][g].z = fmaf(wi, bv[g].z, acc[i][g].z);
          acc[i][g].w = fmaf(wi, bv[g].w, acc[i][g].w);
        }
      }
    }
  }
}

// Writes row i of a [kRows, D] accumulator times f to dst (row stride ld); rows past n skipped.
template <class C, typename T>
__device__ __forceinline__ void store_rows(T* dst, int64_t ld, int64_t row0, int64_t n, int D,
                                           const float4 (&acc)[C::kTM][C::kTD], int ty, int tx,
                                           const float (&f)[C::kTM]) {
#pragma unroll
  for (int i = 0; i < C::kTM; ++i) {
    const int64_t row = row0 + ty + C::kRT * i;
    if (row >= n) continue;
#pragma unroll
    for (int g = 0; g < C::kTD; ++g) {
      const int col = 4 * (tx + C::kCT * g);
      if (col >= D) continue;
      const float4 a = acc[i][g];
      store4(dst + row * ld + col, make_float4(a.x * f[i], a.y * f[i], a.z * f[i], a.w * f[i]));
    }
  }
}

// Over the kCT lanes of a row (consecutive lanes of one warp).
template <int CT>
__device__ __forceinline__ float row_max(float v) {
#pragma unroll
  for (int o = 1; o < CT; o *= 2) v = max_of(v, __shfl_xor_sync(kFullWarp, v, o));
  return v;
}
template <int CT>
__device__ __forceinline__ float row_sum(float v) {
#pragma unroll
  for (int o = 1; o < CT; o *= 2) v += __shfl_xor_sync(kFullWarp, v, o);
  return v;
}

// Block (b * H + h, query tile, the latest first: causal tiles late in the sequence cost most,
// and the grid's tail should be the cheap ones): online softmax over the key tiles up to the
// causal limit. Shared: q [kRows][kLd], k and v [kCols][kLd], p [kRows][kLs]. cp.async groups,
// in order: {q, k_0}, {v_0}, then per step {k_next}, {v_next}, so that k_next loads during the
// softmax and P V, and v_next during the next Q K^T.
template <class C>
__global__ void __launch_bounds__(C::kThreads, C::kMinBlocks)
    forward_tiled(Heads<float> out, float* lse, Heads<const float> q, Heads<const float> k,
                  Heads<const float> v, Problem<float> p) {
  extern __shared__ __align__(16) unsigned char smem[];
  float* qs = reinterpret_cast<float*>(smem);
  float* ks = qs + C::kRows * C::kLd;
  float* vs = ks + C::kCols * C::kLd;
  float* ps = vs + C::kCols * C::kLd;
  const auto [b, h, hk, t0, mask, keys] = QueryBlock<float>(p, C::kRows);
  const int tx = threadIdx.x % C::kCT, ty = threadIdx.x / C::kCT;
  const float* kh = k.at(b, hk);
  const float* vh = v.at(b, hk);
  load_tile<C, C::kRows>(qs, q.at(b, h), q.ld, t0, p.Tq, p.D);
  load_tile<C, C::kCols>(ks, kh, k.ld, 0, p.Sk, p.D);
  cp_async_commit();
  load_tile<C, C::kCols>(vs, vh, v.ld, 0, p.Sk, p.D);
  cp_async_commit();

  const float neg_inf = -INFINITY;
  float m[C::kTM], l[C::kTM];
  float4 acc[C::kTM][C::kTD];
#pragma unroll
  for (int i = 0; i < C::kTM; ++i) {
    m[i] = neg_inf;
    l[i] = 0;
#pragma unroll
    for (int g = 0; g < C::kTD; ++g) acc[i][g] = make_float4(0, 0, 0, 0);
  }
  for (int64_t j0 = 0; j0 < keys; j0 += C::kCols) {
    const bool more = j0 + C::kCols < keys;
    cp_async_wait<1>();
    __syncthreads();
    float s[C::kTM][C::kTN] = {};
    mma_nt<C>(s, qs, ks, ty, tx);
    __syncthreads();  // k is no longer read
    if (more) load_tile<C, C::kCols>(ks, kh, k.ld, j0 + C::kCols, p.Sk, p.D);
    cp_async_commit();

    const bool edge = p.edge(t0, C::kRows, j0, C::kCols);
#pragma unroll
    for (int i = 0; i < C::kTM; ++i) {
      const int row = ty + C::kRT * i;
      float mx = neg_inf;
#pragma unroll
      for (int c = 0; c < C::kTN; ++c) {
        const int col = tx + C::kCT * c;
        s[i][c] = edge ? p.score(s[i][c], mask, t0 + row, j0 + col) : p.scale * s[i][c];
        mx = max_of(mx, s[i][c]);
      }
      const float m_new = max_of(m[i], row_max<C::kCT>(mx));
      // While a row has seen only hidden keys its max stays -inf, and exp(-inf - -inf) is NaN.
      const bool none = m_new == neg_inf;
      const float alpha = none ? 1.0f : expf(m[i] - m_new);
      float sum = 0;
#pragma unroll
      for (int c = 0; c < C::kTN; ++c) {
        const float e = none ? 0.0f : expf(s[i][c] - m_new);
        ps[row * C::kLs + tx + C::kCT * c] = e;
        sum += e;
      }
      l[i] = l[i] * alpha + sum;
      m[i] = m_new;
#pragma unroll
      for (int g = 0; g < C::kTD; ++g) {
        acc[i][g].x *= alpha;
        acc[i][g].y *= alpha;
        acc[i][g].z *= alpha;
        acc[i][g].w *= alpha;
      }
    }
    cp_async_wait<1>();
    __syncthreads();  // v has landed and p is complete
    mma_nn<C>(acc, ps, vs, ty, tx);
    __syncthreads();  // v and p are no longer read
    if (more) load_tile<C, C::kCols>(vs, vh, v.ld, j0 + C::kCols, p.Sk, p.D);
    cp_async_commit();
  }
  cp_async_wait<0>();  // nothing may be in flight into shared memory when the block exits

  float inv[C::kTM];
#pragma unroll
  for (int i = 0; i < C::kTM; ++i) {
    const float total = row_sum<C::kCT>(l[i]);
    const bool seen = m[i] != neg_inf;
    inv[i] = seen ? 1.0f / total : 0.0f;
    const int64_t t = t0 + ty + C::kRT * i;
    if (tx == 0 && t < p.Tq) lse[(b * p.H + h) * p.Tq + t] = seen ? m[i] + logf(total) : INFINITY;
  }
  store_rows<C>(out.at(b, h), out.ld, t0, p.Tq, p.D, acc, ty, tx, inv);
}

// Block (b * H + h, query tile, the latest first): dQ = scale * sum over key tiles of dS K,
// where P = exp(score - lse) and dS = P (dO V^T - delta). Shared: q and dO [kRows][kLd], k and
// v [kCols][kLd], dS [kRows][kLs]. cp.async groups: {q, dO, v_0}, {k_0}, then per step
// {v_next} (loads during Q K^T and dS K), {k_next} (during the next dO V^T).
template <class C>
__global__ void __launch_bounds__(C::kThreads, C::kMinBlocks)
    dq_tiled(Heads<float> dq, Heads<const float> q, Heads<const float> k, Heads<const float> v,
             Heads<const float> g, const float* lse, const float* delta, Problem<float> p) {
  extern __shared__ __align__(16) unsigned char smem[];
  float* qs = reinterpret_cast<float*>(smem);
  float* gs = qs + C::kRows * C::kLd;
  float* ks = gs + C::kRows * C::kLd;
  float* vs = ks + C::kCols * C::kLd;
  float* dss = vs + C::kCols * C::kLd;
  const auto [b, h, hk, t0, mask, keys] = QueryBlock<float>(p, C::kRows);
  const int tx = threadIdx.x % C::kCT, ty = threadIdx.x / C::kCT;
  const float* kh = k.at(b, hk);
  const float* vh = v.at(b, hk);
  load_tile<C, C::kRows>(qs, q.at(b, h), q.ld, t0, p.Tq, p.D);
  load_tile<C, C::kRows>(gs, g.at(b, h), g.ld, t0, p.Tq, p.D);
  load_tile<C, C::kCols>(vs, vh, v.ld, 0, p.Sk, p.D);
  cp_async_commit();
  load_tile<C, C::kCols>(ks, kh, k.ld, 0, p.Sk, p.D);
  cp_async_commit();

  // A tail row gets lse = +inf, so its probabilities are exp(-inf) = 0.
  float lse_r[C::kTM], delta_r[C::kTM];
  float4 acc[C::kTM][C::kTD];
#pragma unroll
  for (int i = 0; i < C::kTM; ++i) {
    const int64_t t = t0 + ty + C::kRT * i, r = (b * p.H + h) * p.Tq + t;
    lse_r[i] = t < p.Tq ? lse[r] : INFINITY;
    delta_r[i] = t < p.Tq ? delta[r] : 0.0f;
#pragma unroll
    for (int c = 0; c < C::kTD; ++c) acc[i][c] = make_float4(0, 0, 0, 0);
  }
  for (int64_t j0 = 0; j0 < keys; j0 += C::kCols) {
    const bool more = j0 + C::kCols < keys;
    cp_async_wait<1>();
    __syncthreads();
    float dp[C::kTM][C::kTN] = {};
    mma_nt<C>(dp, gs, vs, ty, tx);
    __syncthreads();  // v is no longer read
    if (more) load_tile<C, C::kCols>(vs, vh, v.ld, j0 + C::kCols, p.Sk, p.D);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();  // k has landed
    float s[C::kTM][C::kTN] = {};
    mma_nt<C>(s, qs, ks, ty, tx);
    const bool edge = p.edge(t0, C::kRows, j0, C::kCols);
#pragma unroll
    for (int i = 0; i < C::kTM; ++i) {
      const int row = ty + C::kRT * i;
#pragma unroll
      for (int c = 0; c < C::kTN; ++c) {
        const int col = tx + C::kCT * c;
        const float x = edge ? p.score(s[i][c], mask, t0 + row, j0 + col) : p.scale * s[i][c];
        const float pr = expf(x - lse_r[i]);
        dss[row * C::kLs + col] = pr * (dp[i][c] - delta_r[i]);
      }
    }
    __syncthreads();  // dS is complete
    mma_nn<C>(acc, dss, ks, ty, tx);
    __syncthreads();  // k and dS are no longer read
    if (more) load_tile<C, C::kCols>(ks, kh, k.ld, j0 + C::kCols, p.Sk, p.D);
    cp_async_commit();
  }
  cp_async_wait<0>();
  float f[C::kTM];
#pragma unroll
  for (int i = 0; i < C::kTM; ++i) f[i] = p.scale;
  store_rows<C>(dq.at(b, h), dq.ld, t0, p.Tq, p.D, acc, ty, tx, f);
}

// Block (b * Hkv + hk, key tile): dV = sum P^T dO and dK = scale * sum dS^T Q over the query
// heads of the group in head order, each over its query tiles from the first that sees the key
// tile. Shared: k and v [kRows][kLd], q and dO [kCols][kLd], P^T and dS^T [kRows][kLs].
// cp.async groups: {k, v, q_0}, {dO_0}, then per step {q_next} (loads during the dV product),
// {dO_next} (during the next K Q^T).
template <class C>
__global__ void __launch_bounds__(C::kThreads, C::kMinBlocks)
    dkdv_tiled(Heads<float> dk, Heads<float> dv, Heads<const float> q, Heads<const float> k,
               Heads<const float> v, Heads<const float> g, const float* lse, const float* delta,
               Problem<float> p) {
  extern __shared__ __align__(16) unsigned char smem[];
  float* ks = reinterpret_cast<float*>(smem);
  float* vs = ks + C::kRows * C::kLd;
  float* qs = vs + C::kRows * C::kLd;
  float* gs = qs + C::kCols * C::kLd;
  float* ps = gs + C::kCols * C::kLd;
  float* dss = ps + C::kRows * C::kLs;
  const KeyBlock blk(p, C::kRows, C::kCols);
  const int64_t b = blk.b, hk = blk.hk, j0 = blk.j0;
  const int tx = threadIdx.x % C::kCT, ty = threadIdx.x / C::kCT;
  load_tile<C, C::kRows>(ks, k.at(b, hk), k.ld, j0, p.Sk, p.D);
  load_tile<C, C::kRows>(vs, v.at(b, hk), v.ld, j0, p.Sk, p.D);
  load_step<C>(qs, q, blk, 0, p);
  cp_async_commit();
  load_step<C>(gs, g, blk, 0, p);
  cp_async_commit();

  float4 dk_acc[C::kTM][C::kTD], dv_acc[C::kTM][C::kTD];
#pragma unroll
  for (int i = 0; i < C::kTM; ++i)
#pragma unroll
    for (int c = 0; c < C::kTD; ++c) {
      dk_acc[i][c] = make_float4(0, 0, 0, 0);
      dv_acc[i][c] = make_float4(0, 0, 0, 0);
    }
  for (int64_t st = 0; st < blk.steps; ++st) {
    const int64_t h = blk.head(st), i0 = blk.row(st);
    const float* mask = p.mask_at(b, h);
    // A tail query gets lse = +inf, so its probabilities are exp(-inf) = 0.
    float lse_c[C::kTN], delta_c[C::kTN];
#pragma unroll
    for (int c = 0; c < C::kTN; ++c) {
      const int64_t t = i0 + tx + C::kCT * c, r = (b * p.H + h) * p.Tq + t;
      lse_c[c] = t < p.Tq ? lse[r] : INFINITY;
      delta_c[c] = t < p.Tq ? delta[r] : 0.0f;
    }
    cp_async_wait<1>();
    __syncthreads();  // q has landed
    float s[C::kTM][C::kTN] = {};
    mma_nt<C>(s, ks, qs, ty, tx);
    cp_async_wait<0>();
    __syncthreads();  // dO has landed
    float dp[C::kTM][C::kTN] = {};
    mma_nt<C>(dp, vs, gs, ty, tx);
    const bool edge = p.edge(i0, C::kCols, j0, C::kRows);
#pragma unroll
    for (int i = 0; i < C::kTM; ++i) {
      const int row = ty + C::kRT * i;
#pragma unroll
      for (int c = 0; c < C::kTN; ++c) {
        const int col = tx + C::kCT * c;
        const float x = edge ? p.score(s[i][c], mask, i0 + col, j0 + row) : p.scale * s[i][c];
        const float pr = expf(x - lse_c[c]);
        ps[row * C::kLs + col] = pr;
        dss[row * C::kLs + col] = pr * (dp[i][c] - delta_c[c]);
      }
    }
    __syncthreads();  // P^T and dS^T are complete
    mma_nn<C>(dk_acc, dss, qs, ty, tx);
    __syncthreads();  // q is no longer read
    load_step<C>(qs, q, blk, st + 1, p);
    cp_async_commit();
    mma_nn<C>(dv_acc, ps, gs, ty, tx);
    __syncthreads();  // dO, P^T and dS^T are no longer read
    load_step<C>(gs, g, blk, st + 1, p);
    cp_async_commit();
  }
  cp_async_wait<0>();
  float fk[C::kTM], fv[C::kTM];
#pragma unroll
  for (int i = 0; i < C::kTM; ++i) {
    fk[i] = p.scale;
    fv[i] = 1.0f;
  }
  store_rows<C>(dk.at(b, hk), dk.ld, j0, p.Sk, p.D, dk_acc, ty, tx, fk);
  store_rows<C>(dv.at(b, hk), dv.ld, j0, p.Sk, p.D, dv_acc, ty, tx, fv);
}

}  // namespace moegrad::cuda::attention
