#include <omp.h>

#include <cmath>

#include "core/ops/attention.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

using testing::expect_error;

// softmax(scale q k^T + mask, causal) v one row at a time in f64; a row with no visible key
// gives 0.
Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                       const Tensor& mask, double scale) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2);
  std::vector<double> qv = q.contiguous().to_vector<double>();
  std::vector<double> kv = k.contiguous().to_vector<double>();
  std::vector<double> vv = v.contiguous().to_vector<double>();
  std::vector<double> mv;
  if (mask.defined()) mv = mask.expand({B, H, T, S}).contiguous().to_vector<double>();
  std::vector<double> out(size_t(B * H * T * D), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t hk = h / (H / Hkv);
        std::vector<double> s(S);
        double m = -INFINITY;
        for (int64_t j = 0; j < S; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < D; ++c)
            dot += qv[((b * H + h) * T + t) * D + c] * kv[((b * Hkv + hk) * S + j) * D + c];
          s[j] = scale * dot + (mask.defined() ? mv[((b * H + h) * T + t) * S + j] : 0.0);
          if (causal && j > t + S - T) s[j] = -INFINITY;
          m = std::max(m, s[j]);
        }
        if (m == -INFINITY) continue;
        double sum = 0;
        for (int64_t j = 0; j < S; ++j) sum += std::exp(s[j] - m);
        for (int64_t j = 0; j < S; ++j)
          for (int64_t c = 0; c < D; ++c)
            out[((b * H + h) * T + t) * D + c] +=
                std::exp(s[j] - m) / sum * vv[((b * Hkv + hk) * S + j) * D + c];
      }
  return from_vector(out, q.shape());
}

TEST(Attention, CausalGroupedQueryWithPaddingMask) {
  // 4 query heads over 2 kv heads; S > T (keys before the first query); key 1 padded out.
  Tensor q = random_tensor({2, 4, 5, 8}, 1), k = random_tensor({2, 2, 7, 8}, 2);
  Tensor v = random_tensor({2, 2, 7, 8}, 3);
  Tensor mask = zeros({2, 1, 1, 7}, DType::F64);
  mask.select(0, 1).select(2, 1).fill_(-INFINITY);
  const double scale = 1.0 / std::sqrt(8.0);
  EXPECT_ALL_CLOSE(scaled_dot_product_attention(q, k, v, true, mask),
                   naive_attention(q, k, v, true, mask, scale), 1e-13, 1e-12);
  EXPECT_ALL_CLOSE(scaled_dot_product_attention(q, k, v, false, Tensor(), 0.3),
                   naive_attention(q, k, v, false, Tensor(), 0.3), 1e-13, 1e-12);
  Tensor f = scaled_dot_product_attention(q.to(DType::F32), k.to(DType::F32), v.to(DType::F32),
                                          true, mask.to(DType::F32));
  EXPECT_ALL_CLOSE(f, naive_attention(q, k, v, true, mask, scale), 1e-5, 1e-5);
}

TEST(Attention, StridedInputsAndSeveralQueryBlocks) {
  // q as [B, T, H, D] transposed to [B, H, T, D]; k with non-unit stride along D; T spans two
  // query blocks; a full [T, S] additive mask.
  Tensor q = random_tensor({1, 70, 2, 4}, 4).transpose(1, 2);
  Tensor k = random_tensor({1, 1, 4, 70}, 5).transpose(2, 3);
  Tensor v = random_tensor({1, 1, 70, 4}, 6);
  Tensor mask = random_tensor({70, 70}, 7);
  EXPECT_ALL_CLOSE(scaled_dot_product_attention(q, k, v, true, mask),
                   naive_attention(q, k, v, true, mask, 0.5), 1e-13, 1e-12);
}

// From the model's [B, T, H, D] projections seen as [B, H, T, D], out, dq, dk and dv are laid
// out as [B, T, H, D] (they view back without a copy) and hold the values that contiguous
// inputs give, bit for bit: one kv head per query head and grouped heads, f32 and bf16.
TEST(Attention, OutputsAreLaidOutAsTheInputs) {
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t Hkv : {4, 2}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " Hkv " << Hkv);
      const auto heads = [&](int64_t H, uint64_t seed) {
        return random_tensor({2, 37, H, 8}, seed, dt).transpose(1, 2);
      };
      Tensor q = heads(4, 30), k = heads(Hkv, 31), v = heads(Hkv, 32), g = heads(4, 33);
      AttentionOutput o = attention_forward(q, k, v, true);
      AttentionOutput oc = attention_forward(q.contiguous(), k.contiguous(), v.contiguous(), true);
      EXPECT_TRUE(o.out.transpose(1, 2).is_contiguous());
      EXPECT_ALL_CLOSE(o.out, oc.out, 0, 0);
      EXPECT_ALL_CLOSE(o.lse, oc.lse, 0, 0);
      AttentionGrads gr = attention_backward(g, q, k, v, o.out, o.lse, true);
      AttentionGrads gc = attention_backward(g.contiguous(), q.contiguous(), k.contiguous(),
                                             v.contiguous(), oc.out, oc.lse, true);
      for (const Tensor* t : {&gr.dq, &gr.dk, &gr.dv})
        EXPECT_TRUE(t->transpose(1, 2).is_contiguous());
      EXPECT_ALL_CLOSE(gr.dq, gc.dq, 0, 0);
      EXPECT_ALL_CLOSE(gr.dk, gc.dk, 0, 0);
      EXPECT_ALL_CLOSE(gr.dv, gc.dv, 0, 0);
    }
}

TEST(Attention, RowsWithoutVisibleKeysAreZeroNotNaN) {
  // Causal with S < T: queries 0 and 1 see no key. Query 3 is fully masked by -inf.
  Tensor q = random_tensor({1, 1, 4, 4}, 8), k = random_tensor({1, 1, 2, 4}, 9);
  Tensor v = random_tensor({1, 1, 2, 4}, 10);
  Tensor mask = zeros({4, 2}, DType::F64);
  mask.select(0, 3).fill_(-INFINITY);
  AttentionOutput out = attention_forward(q, k, v, true, mask);
  EXPECT_ALL_CLOSE(out.out, naive_attention(q, k, v, true, mask, 0.5), 1e-13, 1e-12);
  std::vector<double> o = out.out.to_vector<double>(), lse = out.lse.to_vector<double>();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(o[i], 0.0);
  EXPECT_EQ(lse[0], INFINITY);
  EXPECT_EQ(lse[3], INFINITY);
  AttentionGrads g = attention_backward(ones({1, 1, 4, 4}, DType::F64), q, k, v, out.out, out.lse,
                                        true, mask);
  for (const Tensor& t : {g.dq, g.dk, g.dv})
    for (double x : t.to_vector<double>()) EXPECT_FALSE(std::isnan(x));
  for (int i = 0; i < 8; ++i) EXPECT_EQ(g.dq.to_vector<double>()[i], 0.0);
}

TEST(Attention, Float32BackwardMatchesFloat64) {
  Tensor q = random_tensor({1, 4, 6, 8}, 20), k = random_tensor({1, 2, 6, 8}, 21);
  Tensor v = random_tensor({1, 2, 6, 8}, 22), g = random_tensor({1, 4, 6, 8}, 23);
  Tensor mask = random_tensor({6, 6}, 24);
  auto grads = [&](DType dt) {
    Tensor qd = q.to(dt), kd = k.to(dt), vd = v.to(dt), md = mask.to(dt);
    AttentionOutput o = attention_forward(qd, kd, vd, true, md);
    return attention_backward(g.to(dt), qd, kd, vd, o.out, o.lse, true, md);
  };
  AttentionGrads f = grads(DType::F32), d = grads(DType::F64);
  EXPECT_ALL_CLOSE(f.dq, d.dq, 1e-5, 1e-4);
  EXPECT_ALL_CLOSE(f.dk, d.dk, 1e-5, 1e-4);
  EXPECT_ALL_CLOSE(f.dv, d.dv, 1e-5, 1e-4);
}

TEST(Attention, BackwardDoesNotDependOnThreadCount) {
  Tensor q = random_tensor({2, 4, 70, 16}, 11, DType::F32);
  Tensor k = random_tensor({2, 2, 70, 16}, 12, DType::F32);
  Tensor v = random_tensor({2, 2, 70, 16}, 13, DType::F32);
  Tensor g = random_tensor({2, 4, 70, 16}, 14, DType::F32);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  AttentionOutput o1 = attention_forward(q, k, v, true);
  AttentionGrads g1 = attention_backward(g, q, k, v, o1.out, o1.lse, true);
  omp_set_num_threads(3);
  AttentionOutput o3 = attention_forward(q, k, v, true);
  AttentionGrads g3 = attention_backward(g, q, k, v, o3.out, o3.lse, true);
  omp_set_num_threads(threads);
  EXPECT_EQ(o1.out.to_vector<float>(), o3.out.to_vector<float>());
  EXPECT_EQ(g1.dq.to_vector<float>(), g3.dq.to_vector<float>());
  EXPECT_EQ(g1.dk.to_vector<float>(), g3.dk.to_vector<float>());
  EXPECT_EQ(g1.dv.to_vector<float>(), g3.dv.to_vector<float>());
}

// bf16 computes in f32 (scores, softmax, accumulators, lse) and rounds each output once: the f32
// op on the same (bf16-valued) inputs, within bf16's precision, forward and backward.
TEST(Attention, Bf16MatchesFloat32OnTheSameInputs) {
  const auto f32 = [](const Tensor& t) { return t.to(DType::F32); };
  const auto bf = [](const Shape& s, uint64_t seed) { return random_tensor(s, seed, DType::BF16); };
  struct Case {
    Tensor q, k, v, mask;
    bool causal;
  };
  Tensor pad = zeros({2, 1, 1, 9}, DType::BF16);
  pad.select(0, 1).select(2, 4).fill_(-INFINITY);
  const Case cases[] = {
      // q as [B, T, H, D] transposed to [B, H, T, D], 3 query heads over 1 kv head, odd T and D.
      {bf({1, 7, 3, 5}, 40).transpose(1, 2), bf({1, 1, 7, 5}, 41), bf({1, 1, 7, 5}, 42),
       Tensor(), true},
      // 5 heads, S > T, a bf16 padding mask, T across two query blocks, k with non-unit stride
      // along D.
      {bf({2, 5, 67, 8}, 43), bf({2, 5, 8, 9}, 44).transpose(2, 3), bf({2, 5, 9, 8}, 45), pad,
       false},
  };
  for (const Case& c : cases) {
    const Tensor m32 = c.mask.defined() ? f32(c.mask) : Tensor();
    AttentionOutput b = attention_forward(c.q, c.k, c.v, c.causal, c.mask);
    AttentionOutput f = attention_forward(f32(c.q), f32(c.k), f32(c.v), c.causal, m32);
    ASSERT_EQ(b.out.dtype(), DType::BF16);
    ASSERT_EQ(b.lse.dtype(), DType::F32);
    EXPECT_ALL_CLOSE(f32(b.out), f.out, 1e-2, 1e-2);
    EXPECT_ALL_CLOSE(b.lse, f.lse, 1e-5, 1e-5);
    Tensor g = bf(c.q.shape(), 46);
    AttentionGrads bg = attention_backward(g, c.q, c.k, c.v, b.out, b.lse, c.causal, c.mask);
    // The f32 reference reads the bf16 output, as the bf16 backward does.
    AttentionGrads fg = attention_backward(f32(g), f32(c.q), f32(c.k), f32(c.v), f32(b.out),
                                           b.lse, c.causal, m32);
    for (const Tensor* t : {&bg.dq, &bg.dk, &bg.dv}) ASSERT_EQ(t->dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(f32(bg.dq), fg.dq, 1e-2, 1e-2);
    EXPECT_ALL_CLOSE(f32(bg.dk), fg.dk, 1e-2, 1e-2);
    EXPECT_ALL_CLOSE(f32(bg.dv), fg.dv, 1e-2, 1e-2);
  }
}

TEST(Attention, Bf16ErrorsNameTheDtypes) {
  Tensor q = random_tensor({1, 2, 3, 4}, 47, DType::BF16);
  AttentionOutput o = attention_forward(q, q, q, true);
  expect_error([&] { attention_backward(q, q, q, q, o.out, o.lse.to(DType::BF16), true); },
               "scaled_dot_product_attention_backward: expected lse of dtype float32 for q of "
               "dtype bfloat16, got bfloat16");
  expect_error([&] { attention_forward(q, q, q, true, zeros({3, 3}, DType::F32)); },
               "scaled_dot_product_attention");
}

TEST(Attention, Errors) {
  Tensor q = random_tensor({1, 3, 4, 8}, 15), k = random_tensor({1, 2, 4, 8}, 16);
  expect_error([&] { scaled_dot_product_attention(q, k, k); },
               "scaled_dot_product_attention: expected q [B, H, T, D] and k, v [B, Hkv, S, D] "
               "with H divisible by Hkv and D > 0, got q [1, 3, 4, 8], k [1, 2, 4, 8], v [1, 2, "
               "4, 8]");
  Tensor k1 = random_tensor({1, 1, 4, 8}, 17);
  expect_error([&] { scaled_dot_product_attention(q, k1, random_tensor({1, 1, 5, 8}, 18)); },
               "v [1, 1, 5, 8]");
  expect_error([&] { scaled_dot_product_attention(q, k1, k1, true, random_tensor({3, 4}, 19)); },
               "scaled_dot_product_attention");
  expect_error([&] { scaled_dot_product_attention(q, k1, k1, true, random_tensor({2, 1, 4, 4}, 19)); },
               "does not broadcast to [B, H, T, S] = [1, 3, 4, 4]");
  expect_error([&] { scaled_dot_product_attention(q, k1.to(DType::F32), k1); },
               "scaled_dot_product_attention");
}

}  // namespace
}  // namespace moegrad
