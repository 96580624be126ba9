#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/ops/attention.h"
#include "core/ops/cpu_loop.h"
#include "core/ops/unary_op.h"

namespace moegrad::cpu {
namespace {

// Query rows per block: the scores of one block, [kQueryBlock, S], stay in a thread's cache-sized
// buffer. The blocking is fixed, so results do not depend on the thread count.
constexpr int64_t kQueryBlock = 64;

void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b,
              blasint(ldb), beta, c, blasint(ldc));
}
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b,
              blasint(ldb), beta, c, blasint(ldc));
}

// One [rows, D] matrix per (batch, head) of a 4-d tensor with unit stride along D.
template <typename T>
struct Heads {
  T* base;
  int64_t sb, sh, ld;
  explicit Heads(const Tensor& t)
      : base(t.data<std::remove_const_t<T>>()), sb(t.stride(0)), sh(t.stride(1)),
        ld(t.size(2) == 1 ? t.size(3) : t.stride(2)) {}
  T* at(int64_t b, int64_t h, int64_t row = 0) const { return base + b * sb + h * sh + row * ld; }
  // Rows [row0, row0 + rows) of head (b, h), D elements each, set to v.
  void fill(int64_t b, int64_t h, int64_t row0, int64_t rows, int64_t D, T v) const {
    for (int64_t r = row0; r < row0 + rows; ++r) std::fill(at(b, h, r), at(b, h, r) + D, v);
  }
};

struct Dims {
  int64_t B, H, Hkv, T, S, D, group, blocks;
  Dims(const Tensor& q, const Tensor& k)
      : B(q.size(0)), H(q.size(1)), Hkv(k.size(1)), T(q.size(2)), S(k.size(2)), D(q.size(3)),
        group(H / Hkv), blocks((T + kQueryBlock - 1) / kQueryBlock) {}
  // Keys a block's rows may see at most: causal rows t < t0 + rows see j <= t + (S - T).
  int64_t keys(int64_t t0, int64_t rows, bool causal) const {
    return causal ? std::clamp(t0 + rows + S - T, int64_t(0), S) : S;
  }
  bool parallel() const { return B * H * T * S * D >= kParallelGrain; }
};

// Adds row t of the mask to scores s. The mask keeps its own dtype: bf16 when the operands of a
// bf16 call were widened (widening the mask too would copy its broadcast [B, H, T, S] view).
template <typename T>
void add_mask_row(T* s, const Tensor& mask, int64_t b, int64_t h, int64_t t, int64_t keys) {
  dispatch_compute(mask.dtype(), "scaled_dot_product_attention", [&](auto tag) {
    using M = typename decltype(tag)::type;
    const M* mr = mask.data<M>() + b * mask.stride(0) + h * mask.stride(1) + t * mask.stride(2);
    const int64_t ms = mask.stride(3);
    for (int64_t j = 0; j < keys; ++j) s[j] += T(compute_t<M>(mr[j * ms]));
  });
}

// Adds the mask to a block's scores (ld = keys) and hides the keys a causal row must not see.
template <typename T>
void mask_scores(T* sc, const Dims& d, int64_t b, int64_t h, int64_t t0, int64_t rows,
                 int64_t keys, bool causal, const Tensor& mask) {
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t t = t0 + i;
    T* s = sc + i * keys;
    if (mask.defined()) add_mask_row(s, mask, b, h, t, keys);
    const int64_t visible = causal ? std::clamp(t + 1 + d.S - d.T, int64_t(0), keys) : keys;
    std::fill(s + visible, s + keys, -std::numeric_limits<T>::infinity());
  }
}

// Scores to probabilities in place; returns the row's logsumexp, +inf when no key is visible
// (the backward's exp(s - lse) is then exp(-inf) = 0 for every key, never NaN).
template <typename T>
T softmax_row(T* s, int64_t keys) {
  const T inf = std::numeric_limits<T>::infinity();
  T m = -inf;
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < keys; ++j) m = s[j] > m ? s[j] : m;
  if (m == -inf) {
    std::fill(s, s + keys, T(0));
    return inf;
  }
  T sum = 0;
  for (int64_t j = 0; j < keys; ++j) {
    s[j] = math::exp(s[j] - m);
    sum += s[j];
  }
  const T inv = T(1) / sum;
#pragma omp simd
  for (int64_t j = 0; j < keys; ++j) s[j] *= inv;
  return m + std::log(sum);
}

template <typename T>
void forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
             const Tensor& v, bool causal, const Tensor& mask, T scale) {
  const Dims d(q, k);
  const Heads<const T> Q(q), K(k), V(v);
  const Heads<T> O(out);
  T* lp = lse.data<T>();
  const int64_t tasks = d.B * d.H * d.blocks;
#pragma omp parallel if (d.parallel() && tasks > 1)
  {
    std::vector<T> sc(size_t(kQueryBlock * d.S));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / (d.H * d.blocks), h = task / d.blocks % d.H;
      const int64_t hk = h / d.group, t0 = task % d.blocks * kQueryBlock;
      const int64_t rows = std::min(kQueryBlock, d.T - t0), keys = d.keys(t0, rows, causal);
      T* l = lp + (b * d.H + h) * d.T + t0;
      if (keys == 0) {
        O.fill(b, h, t0, rows, d.D, T(0));
        std::fill(l, l + rows, std::numeric_limits<T>::infinity());
        continue;
      }
      gemm(CblasNoTrans, CblasTrans, rows, keys, d.D, scale, Q.at(b, h, t0), Q.ld, K.at(b, hk),
           K.ld, T(0), sc.data(), keys);
      mask_scores(sc.data(), d, b, h, t0, rows, keys, causal, mask);
      for (int64_t i = 0; i < rows; ++i) l[i] = softmax_row(sc.data() + i * keys, keys);
      gemm(CblasNoTrans, CblasNoTrans, rows, d.D, keys, T(1), sc.data(), keys, V.at(b, hk), V.ld,
           T(0), O.at(b, h, t0), O.ld);
    }
  }
}

// Per (b, h), query blocks in order: P = exp(s - lse); dV += P^T dO; dP = dO V^T;
// dS = P (dP - rowsum(dO * O)); dQ = scale dS K; dK += scale dS^T Q. With grouped heads each
// query head accumulates into its own slot of a scratch buffer, summed in head order after.
template <typename T>
void backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad,
              const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
              const Tensor& lse, bool causal, const Tensor& mask, T scale) {
  const Dims d(q, k);
  const Heads<const T> Q(q), K(k), V(v), G(grad), O(out);
  const Heads<T> DQ(dq);
  const T* lp = lse.data<T>();
  const bool grouped = d.group > 1;
  Tensor dk_heads = grouped ? empty({d.B, d.H, d.S, d.D}, q.dtype()) : dk;
  Tensor dv_heads = grouped ? empty({d.B, d.H, d.S, d.D}, q.dtype()) : dv;
  const Heads<T> DK(dk_heads), DV(dv_heads);
#pragma omp parallel if (d.parallel() && d.B * d.H > 1)
  {
    std::vector<T> p(size_t(kQueryBlock * d.S)), dp(size_t(kQueryBlock * d.S));
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < d.B * d.H; ++bh) {
      const int64_t b = bh / d.H, h = bh % d.H;
      // One slot per query head: the scratch buffer when grouped, else dk / dv themselves.
      T* dkh = DK.at(b, h);
      T* dvh = DV.at(b, h);
      DK.fill(b, h, 0, d.S, d.D, T(0));
      DV.fill(b, h, 0, d.S, d.D, T(0));
      for (int64_t t0 = 0; t0 < d.T; t0 += kQueryBlock) {
        const int64_t rows = std::min(kQueryBlock, d.T - t0), keys = d.keys(t0, rows, causal);
        if (keys == 0) {
          DQ.fill(b, h, t0, rows, d.D, T(0));
          continue;
        }
        const T* qb = Q.at(b, h, t0);
        const T* gb = G.at(b, h, t0);
        const T* kh = K.at(b, h / d.group);
        const T* vh = V.at(b, h / d.group);
        gemm(CblasNoTrans, CblasTrans, rows, keys, d.D, scale, qb, Q.ld, kh, K.ld, T(0), p.data(),
             keys);
        mask_scores(p.data(), d, b, h, t0, rows, keys, causal, mask);
        for (int64_t i = 0; i < rows; ++i) {
          T* pi = p.data() + i * keys;
          const T l = lp[bh * d.T + t0 + i];
          for (int64_t j = 0; j < keys; ++j) pi[j] = math::exp(pi[j] - l);
        }
        gemm(CblasTrans, CblasNoTrans, keys, d.D, rows, T(1), p.data(), keys, gb, G.ld, T(1), dvh,
             DV.ld);
        gemm(CblasNoTrans, CblasTrans, rows, keys, d.D, T(1), gb, G.ld, vh, V.ld, T(0), dp.data(),
             keys);
        for (int64_t i = 0; i < rows; ++i) {
          const T* gi = gb + i * G.ld;
          const T* oi = O.at(b, h, t0 + i);
          T di = 0;
#pragma omp simd reduction(+ : di)
          for (int64_t c = 0; c < d.D; ++c) di += gi[c] * oi[c];
          T* dpi = dp.data() + i * keys;
          const T* pi = p.data() + i * keys;
#pragma omp simd
          for (int64_t j = 0; j < keys; ++j) dpi[j] = pi[j] * (dpi[j] - di);
        }
        gemm(CblasNoTrans, CblasNoTrans, rows, d.D, keys, scale, dp.data(), keys, kh, K.ld, T(0),
             DQ.at(b, h, t0), DQ.ld);
        gemm(CblasTrans, CblasNoTrans, keys, d.D, rows, scale, dp.data(), keys, qb, Q.ld, T(1), dkh,
             DK.ld);
      }
    }
  }
  if (!grouped) return;
  const Heads<T> DKo(dk), DVo(dv);
  // The scratch slots are contiguous [S, D] per head; the totals may be interleaved.
  auto sum_group = [&](const Heads<T>& heads, const Heads<T>& total, int64_t b, int64_t hk) {
    for (int64_t j = 0; j < d.S; ++j) {
      T* dst = total.at(b, hk, j);
      std::copy(heads.at(b, hk * d.group, j), heads.at(b, hk * d.group, j) + d.D, dst);
      for (int64_t g = 1; g < d.group; ++g) {
        const T* src = heads.at(b, hk * d.group + g, j);
#pragma omp simd
        for (int64_t i = 0; i < d.D; ++i) dst[i] += src[i];
      }
    }
  };
#pragma omp parallel for schedule(static) if (d.parallel() && d.B * d.Hkv > 1)
  for (int64_t bk = 0; bk < d.B * d.Hkv; ++bk) {
    sum_group(DK, DKo, bk / d.Hkv, bk % d.Hkv);
    sum_group(DV, DVo, bk / d.Hkv, bk % d.Hkv);
  }
}

}  // namespace

void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                       const Tensor& v, bool causal, const Tensor& mask, double scale) {
  if (q.dtype() == DType::BF16) {
    // BLAS has no bf16 GEMM: the f32 kernel on widened copies, each output rounded once.
    const Tensor o = empty(out.shape(), DType::F32);
    forward<float>(o, lse, q.to(DType::F32), k.to(DType::F32), v.to(DType::F32), causal, mask,
                   float(scale));
    out.copy_(o);
    return;
  }
  dispatch_float(q.dtype(), "scaled_dot_product_attention", [&](auto tag) {
    using T = typename decltype(tag)::type;
    forward<T>(out, lse, q, k, v, causal, mask, T(scale));
  });
}

void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, bool causal, const Tensor& mask, double scale) {
  if (q.dtype() == DType::BF16) {
    const auto f32 = [](const Tensor& t) { return t.to(DType::F32); };
    const Tensor dq32 = empty(dq.shape(), DType::F32), dk32 = empty(dk.shape(), DType::F32),
                 dv32 = empty(dv.shape(), DType::F32);
    backward<float>(dq32, dk32, dv32, f32(grad), f32(q), f32(k), f32(v), f32(out), lse, causal,
                    mask, float(scale));
    dq.copy_(dq32);
    dk.copy_(dk32);
    dv.copy_(dv32);
    return;
  }
  dispatch_float(q.dtype(), "scaled_dot_product_attention_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    backward<T>(dq, dk, dv, grad, q, k, v, out, lse, causal, mask, T(scale));
  });
}

}  // namespace moegrad::cpu
