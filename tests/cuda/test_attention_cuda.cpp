#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/ops.h"
#include "core/ops/attention.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

using testing::gpu;

using testing::same_view;

// max |a - e| / max(max |e|, min_scale) over the finite entries of e, which a must match exactly
// where e is infinite (the logsumexp of a row that sees no key): single entries of a gradient can
// be ~0, so the error is taken against the tensor's scale, or min_scale where the whole tensor is
// ~0 (dq and dk when every query sees one key are rounding residue of exact zeros).
::testing::AssertionResult close(const Tensor& actual, const Tensor& expected, double tol,
                                 double min_scale = 0) {
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(actual.shape()) << " != "
                                         << shape_str(expected.shape());
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double err = 0, scale = min_scale;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(e[i])) {
      if (a[i] != e[i])
        return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " != " << e[i];
      continue;
    }
    err = std::max(err, std::fabs(a[i] - e[i]));
    scale = std::max(scale, std::fabs(e[i]));
  }
  const double rel = scale > 0 ? err / scale : err;
  if (rel <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max error " << err << " against max " << scale
                                       << " (relative " << rel << ", tolerance " << tol << ")";
}

// bf16: both backends compute in f32 and round each output once; the CUDA tensor-core kernels
// also round the probabilities (and dS) to bf16 before their second product, as FlashAttention
// does, which adds about 2^-9 of the output's scale.
double tolerance(DType dt) {
  return dt == DType::F32 ? 1e-5 : dt == DType::BF16 ? 1e-2 : 1e-10;
}

// CPU inputs and the same views on the GPU.
struct Case {
  Tensor q, k, v, grad, mask;
  Tensor gq, gk, gv, ggrad, gmask;
  bool causal = true;
};

Case contiguous_case(int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t S, int64_t D,
                     bool causal, DType dt, uint64_t seed) {
  Case c;
  c.q = random_tensor({B, H, T, D}, seed, dt);
  c.k = random_tensor({B, Hkv, S, D}, seed + 1, dt);
  c.v = random_tensor({B, Hkv, S, D}, seed + 2, dt);
  c.grad = random_tensor({B, H, T, D}, seed + 3, dt);
  c.gq = gpu(c.q);
  c.gk = gpu(c.k);
  c.gv = gpu(c.v);
  c.ggrad = gpu(c.grad);
  c.causal = causal;
  return c;
}

// Forward against the CPU; backward against the CPU from the CPU's out and lse, so that each
// kernel is checked on its own.
void expect_parity(const Case& c) {
  const double tol = tolerance(c.q.dtype());
  AttentionOutput cpu = attention_forward(c.q, c.k, c.v, c.causal, c.mask);
  AttentionOutput cuda = attention_forward(c.gq, c.gk, c.gv, c.causal, c.gmask);
  ASSERT_TRUE(cuda.out.device().is_cuda());
  EXPECT_TRUE(close(cuda.out, cpu.out, tol)) << "out";
  EXPECT_TRUE(close(cuda.lse, cpu.lse, tol)) << "lse";
  AttentionGrads cg = attention_backward(c.grad, c.q, c.k, c.v, cpu.out, cpu.lse, c.causal, c.mask);
  AttentionGrads gg = attention_backward(c.ggrad, c.gq, c.gk, c.gv, gpu(cpu.out), gpu(cpu.lse),
                                         c.causal, c.gmask);
  double dv_scale = 0;
  for (double x : cg.dv.to_vector<double>()) dv_scale = std::max(dv_scale, std::fabs(x));
  EXPECT_TRUE(close(gg.dq, cg.dq, tol, dv_scale)) << "dq";
  EXPECT_TRUE(close(gg.dk, cg.dk, tol, dv_scale)) << "dk";
  EXPECT_TRUE(close(gg.dv, cg.dv, tol)) << "dv";
}

TEST(AttentionCuda, ForwardAndBackwardMatchCpuOverSizes) {
  SKIP_WITHOUT_GPU();
  uint64_t seed = 1;
  int n = 0;
  for (DType dt : {DType::F32, DType::F64})
    for (int64_t T : {1, 7, 64, 129, 300})
      for (int64_t D : {8, 64, 80, 128})
        for (bool grouped : {false, true}) {
          // f64 (for gradchecks) on a subset: an odd length and an odd head dim.
          if (dt == DType::F64 && !((T == 7 || T == 129) && (D == 8 || D == 80))) continue;
          const int64_t B = grouped ? 3 : 1, Hkv = grouped ? 2 : 4;
          const bool causal = n++ % 3 != 2;
          SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " B " << B << " H 4 Hkv " << Hkv
                                            << " T " << T << " D " << D << " causal " << causal);
          expect_parity(contiguous_case(B, 4, Hkv, T, T, D, causal, dt, seed));
          seed += 4;
        }
}

// Head dims 16, 8 and 24 are tileable, so bf16 takes the tensor-core kernels: rows that see no
// key must come out with lse = +inf and zero gradients there too.
TEST(AttentionCuda, MasksKeysBeforeQueriesAndRowsThatSeeNoKey) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::F32, DType::F64, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dt));
    {
      SCOPED_TRACE("padding mask, S > T");
      Case c = contiguous_case(2, 4, 2, 5, 41, 16, true, dt, 100);
      c.mask = zeros({2, 1, 1, 41}, dt);
      c.mask.select(0, 1).select(2, 1).fill_(-INFINITY);
      c.gmask = gpu(c.mask);
      expect_parity(c);
    }
    {
      SCOPED_TRACE("S < T: the first 7 rows see no key");
      expect_parity(contiguous_case(1, 2, 1, 40, 33, 8, true, dt, 200));
    }
    {
      SCOPED_TRACE("full additive mask, one row masked out entirely, not causal");
      Case c = contiguous_case(2, 2, 2, 37, 70, 24, false, dt, 300);
      c.mask = random_tensor({2, 2, 37, 70}, 304, dt);
      c.mask.select(0, 1).select(0, 0).select(0, 3).fill_(-INFINITY);
      c.gmask = gpu(c.mask);
      expect_parity(c);
    }
  }
}

// f32 with a head dim that is a multiple of 4 and aligned rows takes the tiled kernels (64 rows
// by 64 or 32 streamed rows, D padded to 32, 64, 96 or 128); other f32 head dims the generic
// ones. Lengths straddle the tiles, T != S both ways, with grouped heads and masks.
TEST(AttentionCuda, TiledAndGenericPathsOverEdgeShapes) {
  SKIP_WITHOUT_GPU();
  struct Shape {
    int64_t B, H, Hkv, T, S, D;
    bool causal;
  };
  const Shape shapes[] = {
      {1, 2, 1, 65, 65, 32, true},   {2, 4, 2, 100, 100, 96, true}, {1, 2, 2, 63, 63, 128, true},
      {1, 4, 1, 70, 150, 64, true},  {1, 2, 1, 150, 70, 64, true},  {1, 2, 2, 65, 129, 12, false},
      {1, 3, 3, 33, 97, 100, true},  {2, 2, 1, 129, 64, 13, true},  {1, 2, 2, 64, 64, 4, false},
      {1, 2, 1, 200, 131, 128, false}};
  uint64_t seed = 800;
  for (const Shape& s : shapes) {
    SCOPED_TRACE(::testing::Message() << "B " << s.B << " H " << s.H << " Hkv " << s.Hkv << " T "
                                      << s.T << " S " << s.S << " D " << s.D << " causal "
                                      << s.causal);
    expect_parity(contiguous_case(s.B, s.H, s.Hkv, s.T, s.S, s.D, s.causal, DType::F32, seed));
    seed += 4;
  }
  {
    SCOPED_TRACE("tiled, additive mask with a row masked out, causal, S > T");
    Case c = contiguous_case(2, 4, 2, 77, 140, 64, true, DType::F32, 900);
    c.mask = random_tensor({2, 1, 77, 140}, 904, DType::F32);
    c.mask.select(0, 0).select(0, 0).select(0, 70).fill_(-INFINITY);
    c.gmask = gpu(c.mask);
    expect_parity(c);
  }
}

// The model's layout: q, v and grad the [B, T, H, D] -> [B, H, T, D] transposes (heads
// interleaved), k rows padded to D + 8 and read from element k_offset on (4: rows stay 16-byte
// aligned in f32 and 8-byte aligned in bf16, the tiled or tensor-core kernels; 2 in bf16: the
// generic ones).
Case transposed_case(DType dtype, int64_t k_offset, uint64_t seed) {
  const int64_t B = 2, H = 4, Hkv = 2, T = 90, D = 64;
  Tensor q_base = random_tensor({B, T, H, D}, seed, dtype);
  Tensor k_base = random_tensor({B, Hkv, T, D + 8}, seed + 1, dtype);
  Tensor v_base = random_tensor({B, T, Hkv, D}, seed + 2, dtype);
  Tensor g_base = random_tensor({B, T, H, D}, seed + 3, dtype);
  Case c;
  c.q = q_base.transpose(1, 2);
  c.k = k_base.narrow(3, k_offset, D);
  c.v = v_base.transpose(1, 2);
  c.grad = g_base.transpose(1, 2);
  c.gq = same_view(c.q, gpu(q_base));
  c.gk = same_view(c.k, gpu(k_base));
  c.gv = same_view(c.v, gpu(v_base));
  c.ggrad = same_view(c.grad, gpu(g_base));
  return c;
}

// Interleaved heads and padded rows with 16-byte aligned rows keep the tiled kernels.
TEST(AttentionCuda, NonContiguousAlignedInputs) {
  SKIP_WITHOUT_GPU();
  expect_parity(transposed_case(DType::F32, 4, 1000));
}

TEST(AttentionCuda, NonContiguousInputs) {
  SKIP_WITHOUT_GPU();
  const int64_t B = 2, H = 4, Hkv = 2, T = 67, D = 40;
  Tensor q_base = random_tensor({B, T, H, D}, 400, DType::F32);
  Tensor k_base = random_tensor({B, Hkv, T, D + 5}, 401, DType::F32);
  Tensor v_base = random_tensor({B, Hkv, D, T}, 402, DType::F32);
  Tensor g_base = random_tensor({B, T, H, D}, 403, DType::F32);
  Case c;
  c.q = q_base.transpose(1, 2);        // heads interleaved: read in place
  c.k = k_base.narrow(3, 2, D);        // padded rows, 8 bytes off 16: the generic kernels
  c.v = v_base.transpose(2, 3);        // stride S along D: copied first
  c.grad = g_base.transpose(1, 2);
  c.gq = same_view(c.q, gpu(q_base));
  c.gk = same_view(c.k, gpu(k_base));
  c.gv = same_view(c.v, gpu(v_base));
  c.ggrad = same_view(c.grad, gpu(g_base));
  expect_parity(c);
}

// bf16 q, k, v, grad (and mask) against the CPU's bf16 path (f32 on widened copies): the
// tensor-core kernels (head dim a multiple of 4, rows 8-byte aligned; head-dim bounds 32, 64, 96
// and 128, D = 40 zero-padded to 64) and the generic ones, grouped heads, odd lengths, a bf16
// mask and the transposed [B, T, H, D] views the model passes.
TEST(AttentionCuda, Bf16MatchesCpuBf16OnTiledAndGenericPaths) {
  SKIP_WITHOUT_GPU();
  struct Shape {
    int64_t B, H, Hkv, T, S, D;
    bool causal;
  };
  const Shape shapes[] = {{1, 3, 1, 7, 7, 8, true},       {2, 4, 2, 129, 129, 64, true},
                          {1, 2, 1, 70, 150, 128, true},   {1, 5, 5, 100, 100, 96, false},
                          {2, 6, 2, 67, 67, 13, true},     {1, 3, 1, 33, 97, 40, false}};
  uint64_t seed = 1100;
  for (const Shape& s : shapes) {
    SCOPED_TRACE(::testing::Message() << "bf16 B " << s.B << " H " << s.H << " Hkv " << s.Hkv
                                      << " T " << s.T << " S " << s.S << " D " << s.D
                                      << " causal " << s.causal);
    expect_parity(contiguous_case(s.B, s.H, s.Hkv, s.T, s.S, s.D, s.causal, DType::BF16, seed));
    seed += 4;
  }
  {
    SCOPED_TRACE("bf16 tiled, padding mask, S > T");
    Case c = contiguous_case(2, 4, 2, 77, 140, 64, true, DType::BF16, 1200);
    c.mask = zeros({2, 1, 1, 140}, DType::BF16);
    c.mask.select(0, 1).select(2, 3).fill_(-INFINITY);
    c.gmask = gpu(c.mask);
    expect_parity(c);
  }
  for (int64_t offset : {4, 2}) {
    SCOPED_TRACE(::testing::Message() << "bf16 transposed q, grad and v; k rows offset by "
                                      << offset << " (8-byte aligned: tensor cores; else generic)");
    expect_parity(transposed_case(DType::BF16, offset, 1300));
  }
  Tensor q = gpu(random_tensor({1, 2, 9, 8}, 1400, DType::BF16));
  AttentionOutput o = attention_forward(q, q, q, true);
  EXPECT_EQ(o.out.dtype(), DType::BF16);
  EXPECT_EQ(o.lse.dtype(), DType::F32);
  AttentionGrads g = attention_backward(q, q, q, q, o.out, o.lse, true);
  for (const Tensor* t : {&g.dq, &g.dk, &g.dv}) EXPECT_EQ(t->dtype(), DType::BF16);
}

TEST(AttentionCuda, BackwardIsBitIdenticalRunToRun) {
  SKIP_WITHOUT_GPU();
  // Tiled paths (D = 64): f32 FMA tiles and bf16 tensor cores.
  for (DType dt : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dt));
    Case c = contiguous_case(3, 4, 2, 300, 300, 64, true, dt, 500);
    AttentionOutput f1 = attention_forward(c.gq, c.gk, c.gv, true);
    AttentionOutput f2 = attention_forward(c.gq, c.gk, c.gv, true);
    EXPECT_EQ(f1.out.to_vector<double>(), f2.out.to_vector<double>());
    EXPECT_EQ(f1.lse.to_vector<double>(), f2.lse.to_vector<double>());
    AttentionGrads a = attention_backward(c.ggrad, c.gq, c.gk, c.gv, f1.out, f1.lse, true);
    AttentionGrads b = attention_backward(c.ggrad, c.gq, c.gk, c.gv, f1.out, f1.lse, true);
    EXPECT_EQ(a.dq.to_vector<double>(), b.dq.to_vector<double>());
    EXPECT_EQ(a.dk.to_vector<double>(), b.dk.to_vector<double>());
    EXPECT_EQ(a.dv.to_vector<double>(), b.dv.to_vector<double>());
  }
}

TEST(AttentionCuda, GradientsThroughAutogradMatchCpu) {
  SKIP_WITHOUT_GPU();
  Tensor q = random_tensor({1, 2, 9, 8}, 600), k = random_tensor({1, 1, 9, 8}, 601);
  Tensor v = random_tensor({1, 1, 9, 8}, 602), w = random_tensor({1, 2, 9, 8}, 603);
  std::vector<Variable> cpu{Variable(q, true), Variable(k, true), Variable(v, true)};
  std::vector<Variable> cuda{Variable(gpu(q), true), Variable(gpu(k), true),
                             Variable(gpu(v), true)};
  sum(mul(scaled_dot_product_attention(cpu[0], cpu[1], cpu[2]), Variable(w))).backward();
  sum(mul(scaled_dot_product_attention(cuda[0], cuda[1], cuda[2]), Variable(gpu(w)))).backward();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(close(cuda[i].grad(), cpu[i].grad(), 1e-10)) << i;
}

TEST(AttentionCuda, HeadDimAbove128IsRejected) {
  SKIP_WITHOUT_GPU();
  Tensor q = gpu(random_tensor({1, 1, 4, 129}, 700, DType::F32));
  testing::expect_error([&] { attention_forward(q, q, q, true); }, "head dims up to 128, got 129");
}

}  // namespace
}  // namespace moegrad
