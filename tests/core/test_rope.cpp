#include <cmath>

#include "core/ops/rope.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

using testing::expect_error;

// HF's recipe written out literally: emb = cat(freqs, freqs) with f32 angles,
// out = x * cos(emb) + rotate_half(x) * sin(emb), rotate_half(x) = cat(-x[D/2:], x[:D/2]).
Tensor naive_rope(const Tensor& x, double theta, const std::vector<int64_t>& pos) {
  const int64_t T = x.size(-2), D = x.size(-1), h = D / 2;
  std::vector<double> xv = x.contiguous().to_vector<double>(), out(xv.size());
  for (size_t r = 0; r < xv.size() / size_t(D); ++r) {
    const double* row = xv.data() + r * D;
    std::vector<double> emb(D), rotated(D);
    for (int64_t i = 0; i < D; ++i) {
      const float inv = 1.0f / float(std::pow(theta, double(float(2 * (i % h)) / float(D))));
      emb[i] = double(float(pos[r % T]) * inv);
      rotated[i] = i < h ? -row[i + h] : row[i - h];
    }
    for (int64_t i = 0; i < D; ++i)
      out[r * D + i] = row[i] * std::cos(emb[i]) + rotated[i] * std::sin(emb[i]);
  }
  return from_vector(out, x.shape());
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  return p;
}

TEST(Rope, HandComputedHalfLayout) {
  // D = 4, theta = 100: inv_freq = [1, 0.1]. Position 0 is the identity; at position 1 the
  // pairs are (x0, x2) at angle 1 and (x1, x3) at angle 0.1.
  Tensor x = from_vector<double>({1, 2, 3, 4, 1, 2, 3, 4}, {1, 1, 2, 4});
  const double c1 = std::cos(1.0), s1 = std::sin(1.0), c2 = std::cos(0.1), s2 = std::sin(0.1);
  Tensor expected = from_vector<double>({1, 2, 3, 4,  //
                                         1 * c1 - 3 * s1, 2 * c2 - 4 * s2, 3 * c1 + 1 * s1,
                                         4 * c2 + 2 * s2},
                                        {1, 1, 2, 4});
  // 0.1 is rounded to f32 on the way, as HF does.
  EXPECT_ALL_CLOSE(rope(x, 100.0), expected, 1e-7, 0);
  EXPECT_ALL_CLOSE(rope(x.to(DType::F32), 100.0), expected, 1e-6, 0);
}

TEST(Rope, AnglesAreRoundedToF32LikeHF) {
  Tensor pos = from_vector<int64_t>({3001}, {1});
  RopeTables tab = rope_tables(1, 4, 10000.0, pos, DType::F64);
  const float inv = 1.0f / 100.0f;  // 10000^(-2/4)
  const double angle = double(3001.0f * inv);
  EXPECT_EQ(tab.cos.to_vector<double>()[1], std::cos(angle));
  EXPECT_EQ(tab.sin.to_vector<double>()[1], std::sin(angle));
}

TEST(Rope, MatchesNaiveReferenceOnStridedInputs) {
  // [B, T, H, D] viewed as [B, H, T, D], as attention produces it.
  Tensor x = random_tensor({2, 5, 3, 8}, 1).transpose(1, 2);
  EXPECT_ALL_CLOSE(rope(x, 10000.0), naive_rope(x, 10000.0, iota(5)), 1e-12, 1e-12);
  // Non-unit stride along D.
  Tensor y = random_tensor({6, 7}, 2).t();
  EXPECT_ALL_CLOSE(rope(y, 500.0), naive_rope(y, 500.0, iota(7)), 1e-12, 1e-12);
  Tensor xf = x.to(DType::F32);
  EXPECT_ALL_CLOSE(rope(xf, 10000.0), naive_rope(x, 10000.0, iota(5)), 1e-5, 1e-5);
  // Rows stored T outermost and the batch innermost: no row dim where the view puts it.
  Tensor z = random_tensor({5, 3, 2, 8}, 3).transpose(0, 2);
  EXPECT_ALL_CLOSE(rope(z, 10000.0), naive_rope(z, 10000.0, iota(5)), 1e-12, 1e-12);
  EXPECT_ALL_CLOSE(rope_backward(rope(z, 10000.0), 10000.0), z, 1e-12, 1e-12);
}

TEST(Rope, ExplicitPositions) {
  Tensor x = random_tensor({1, 2, 3, 6}, 3);
  std::vector<int64_t> pos{7, 0, 4095};
  EXPECT_ALL_CLOSE(rope(x, 10000.0, from_vector(pos, {3})), naive_rope(x, 10000.0, pos), 1e-12,
                   1e-12);
  Tensor pos32 = from_vector<int32_t>({7, 0, 4095}, {3});
  EXPECT_ALL_CLOSE(rope(x, 10000.0, pos32), naive_rope(x, 10000.0, pos), 1e-12, 1e-12);
}

// The default positions' tables are kept between calls (the last 8 sizes): over more sizes than
// that, twice, in f64, f32 and bf16, each result is still the rotation by positions 0..T-1.
TEST(Rope, KeptTablesAreThoseOfPositionsFromZero) {
  for (int round = 0; round < 2; ++round)
    for (DType dt : {DType::F64, DType::F32, DType::BF16})
      for (int64_t T = 1; T <= 11; ++T) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " T " << T << " round " << round);
        Tensor x = random_tensor({2, T, 6}, 300 + T, dt);
        Tensor positions = arange(T);
        EXPECT_ALL_CLOSE(rope(x, 500.0), rope(x, 500.0, positions), 0, 0);
        EXPECT_ALL_CLOSE(rope_backward(x, 500.0), rope_backward(x, 500.0, positions), 0, 0);
      }
}

// The result is laid out as the input: the attention's [B, T, H, D] projections seen as
// [B, H, T, D] rotate into (and back from) the same layout, with the contiguous input's values.
TEST(Rope, ResultIsLaidOutAsTheInput) {
  for (DType dt : {DType::F32, DType::BF16}) {
    Tensor x = random_tensor({2, 9, 3, 8}, 40, dt).transpose(1, 2);
    Tensor y = rope(x, 10000.0), back = rope_backward(x, 10000.0);
    EXPECT_TRUE(y.transpose(1, 2).is_contiguous());
    EXPECT_TRUE(back.transpose(1, 2).is_contiguous());
    EXPECT_ALL_CLOSE(y, rope(x.contiguous(), 10000.0), 0, 0);
    EXPECT_ALL_CLOSE(back, rope_backward(x.contiguous(), 10000.0), 0, 0);
  }
  // A last dim that is not innermost (stride 6): written through out's own strides.
  Tensor x = random_tensor({4, 6}, 41).t();  // [6, 4], strides [1, 6]
  EXPECT_ALL_CLOSE(rope(x, 100.0), rope(x.contiguous(), 100.0), 0, 0);
}

TEST(Rope, BackwardIsTheInverseRotation) {
  Tensor x = random_tensor({2, 2, 4, 8}, 4);
  EXPECT_ALL_CLOSE(rope_backward(rope(x, 10000.0), 10000.0), x, 1e-13, 1e-13);
}

// bf16 rotates in f32 by the f32 tables and rounds once: the f32 op's values on the same
// (bf16-valued) inputs, rounded to bf16, forward and backward.
TEST(Rope, Bf16IsTheFloat32RotationRoundedOnce) {
  // [B, T, H, D] viewed as [B, H, T, D] with an odd head count and sequence length, and a
  // non-unit stride along D.
  const Tensor inputs[] = {random_tensor({2, 5, 3, 6}, 30, DType::BF16).transpose(1, 2),
                           random_tensor({6, 7}, 31, DType::BF16).t()};
  for (const Tensor& x : inputs) {
    const std::vector<int64_t> pos = iota(x.size(-2));
    Tensor positions = from_vector<int64_t>({3, 4095, 0, 17, 1, 2, 9}, {7}).narrow(0, 0, x.size(-2));
    for (const Tensor& p : {Tensor(), positions}) {
      Tensor y = rope(x, 10000.0, p), yf = rope(x.to(DType::F32), 10000.0, p);
      ASSERT_EQ(y.dtype(), DType::BF16);
      EXPECT_ALL_CLOSE(y.to(DType::F32), yf, 1e-2, 1e-2);
      EXPECT_EQ(y.to_vector<float>(), yf.to(DType::BF16).to_vector<float>());
      Tensor dx = rope_backward(x, 10000.0, p), dxf = rope_backward(x.to(DType::F32), 10000.0, p);
      ASSERT_EQ(dx.dtype(), DType::BF16);
      EXPECT_ALL_CLOSE(dx.to(DType::F32), dxf, 1e-2, 1e-2);
      EXPECT_EQ(dx.to_vector<float>(), dxf.to(DType::BF16).to_vector<float>());
    }
    EXPECT_ALL_CLOSE(rope(x, 10000.0).to(DType::F32), naive_rope(x, 10000.0, pos), 1e-2, 1e-2);
  }
}

TEST(Rope, Errors) {
  expect_error([] { rope(random_tensor({2, 3}, 5), 10000.0); },
               "rope: expected input [..., T, D] with D even, got [2, 3]");
  expect_error([] { rope(random_tensor({3, 4}, 5), 10000.0, arange(4)); },
               "rope: expected positions of shape [3], got [4]");
  expect_error([] { rope(random_tensor({3, 4}, 5), 10000.0, random_tensor({3}, 6)); },
               "int32 or int64");
}

}  // namespace
}  // namespace moegrad
