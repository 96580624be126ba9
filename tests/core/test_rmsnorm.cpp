#include <omp.h>

#include <cmath>

#include "core/ops/rmsnorm.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

using testing::expect_error;

// y[r, j] = x[r, j] / sqrt(mean_j x[r, j]^2 + eps) * w[j], in f64 over x as rows of D.
Tensor naive_rmsnorm(const Tensor& x, const Tensor& w, double eps) {
  std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const size_t D = wv.size();
  std::vector<double> y(xv.size());
  for (size_t r = 0; r < xv.size() / D; ++r) {
    double ss = 0;
    for (size_t j = 0; j < D; ++j) ss += xv[r * D + j] * xv[r * D + j];
    const double rs = 1.0 / std::sqrt(ss / double(D) + eps);
    for (size_t j = 0; j < D; ++j) y[r * D + j] = xv[r * D + j] * rs * wv[j];
  }
  return from_vector(y, x.shape());
}

TEST(RmsNorm, MatchesNaiveReference) {
  Tensor x = random_tensor({2, 3, 8}, 1), w = random_tensor({8}, 2);
  EXPECT_ALL_CLOSE(rmsnorm(x, w, 1e-5), naive_rmsnorm(x, w, 1e-5), 1e-14, 1e-13);
  EXPECT_ALL_CLOSE(rmsnorm(x.to(DType::F32), w.to(DType::F32), 1e-5), naive_rmsnorm(x, w, 1e-5),
                   1e-6, 1e-5);
  // A transposed input is normalised along its logical last dim.
  Tensor xt = random_tensor({8, 5}, 3).t();
  EXPECT_ALL_CLOSE(rmsnorm(xt, w, 1e-5), naive_rmsnorm(xt.contiguous(), w, 1e-5), 1e-14, 1e-13);
}

TEST(RmsNorm, HandComputedRowAndRstd) {
  // mean(3^2, 4^2) = 12.5; eps 0 -> rstd = 1/sqrt(12.5).
  Tensor x = from_vector<double>({3, 4}, {1, 2});
  Tensor w = from_vector<double>({1, 2}, {2});
  RmsNormOutput out = rmsnorm_forward(x, w, 0.0);
  const double r = 1.0 / std::sqrt(12.5);
  EXPECT_ALL_CLOSE(out.rstd, from_vector<double>({r}, {1}), 1e-15, 1e-15);
  EXPECT_ALL_CLOSE(out.y, from_vector<double>({3 * r, 8 * r}, {1, 2}), 1e-15, 1e-15);
}

TEST(RmsNorm, Float32BackwardMatchesFloat64) {
  Tensor x = random_tensor({70, 6}, 10), w = random_tensor({6}, 11), g = random_tensor({70, 6}, 12);
  auto grads = [&](DType dt) {
    RmsNormOutput o = rmsnorm_forward(x.to(dt), w.to(dt), 1e-5);
    return rmsnorm_backward(g.to(dt), x.to(dt), w.to(dt), o.rstd);
  };
  RmsNormGrads f = grads(DType::F32), d = grads(DType::F64);
  EXPECT_ALL_CLOSE(f.dx, d.dx, 1e-5, 1e-4);
  EXPECT_ALL_CLOSE(f.dw, d.dw, 1e-5, 1e-4);
}

TEST(RmsNorm, BackwardDoesNotDependOnThreadCount) {
  Tensor x = random_tensor({300, 128}, 4, DType::F32), w = random_tensor({128}, 5, DType::F32);
  Tensor g = random_tensor({300, 128}, 6, DType::F32);
  RmsNormOutput out = rmsnorm_forward(x, w, 1e-5);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  RmsNormGrads one = rmsnorm_backward(g, x, w, out.rstd);
  omp_set_num_threads(3);
  RmsNormGrads three = rmsnorm_backward(g, x, w, out.rstd);
  omp_set_num_threads(threads);
  EXPECT_EQ(one.dw.to_vector<float>(), three.dw.to_vector<float>());
  EXPECT_EQ(one.dx.to_vector<float>(), three.dx.to_vector<float>());
}

// bf16 computes in f32 and rounds each output once: y and dx are the f32 op's values on the
// same (bf16-valued) inputs, rounded to bf16; rstd stays f32 and dw is an f64 sum rounded once.
TEST(RmsNorm, Bf16MatchesFloat32OnTheSameInputs) {
  const auto f32 = [](const Tensor& t) { return t.to(DType::F32); };
  // An odd row length, and a transposed input (D = 7 along a strided dim) with 70 rows (more
  // than dw's 64 row blocks).
  for (const Tensor& x : {random_tensor({3, 5, 7}, 20, DType::BF16),
                          random_tensor({7, 70}, 21, DType::BF16).t()}) {
    Tensor w = random_tensor({7}, 22, DType::BF16);
    Tensor g = random_tensor(x.shape(), 23, DType::BF16);
    RmsNormOutput b = rmsnorm_forward(x, w, 1e-5), f = rmsnorm_forward(f32(x), f32(w), 1e-5);
    ASSERT_EQ(b.y.dtype(), DType::BF16);
    ASSERT_EQ(b.rstd.dtype(), DType::F32);
    EXPECT_ALL_CLOSE(f32(b.y), f.y, 1e-2, 1e-2);
    EXPECT_EQ(b.y.to_vector<float>(), f.y.to(DType::BF16).to_vector<float>());
    EXPECT_EQ(b.rstd.to_vector<float>(), f.rstd.to_vector<float>());
    RmsNormGrads bg = rmsnorm_backward(g, x, w, b.rstd);
    RmsNormGrads fg = rmsnorm_backward(f32(g), f32(x), f32(w), f.rstd);
    ASSERT_EQ(bg.dx.dtype(), DType::BF16);
    ASSERT_EQ(bg.dw.dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(f32(bg.dx), fg.dx, 1e-2, 1e-2);
    EXPECT_EQ(bg.dx.to_vector<float>(), fg.dx.to(DType::BF16).to_vector<float>());
    EXPECT_ALL_CLOSE(f32(bg.dw), fg.dw, 1e-2, 1e-2);
  }
}

TEST(RmsNorm, Bf16ErrorsNameTheDtypes) {
  Tensor x = random_tensor({2, 8}, 24, DType::BF16), w = random_tensor({8}, 25, DType::BF16);
  expect_error([&] { rmsnorm(x, w.to(DType::F32), 1e-5); }, "rmsnorm");
  RmsNormOutput out = rmsnorm_forward(x, w, 1e-5);
  expect_error([&] { rmsnorm_backward(x, x, w, out.rstd.to(DType::BF16)); },
               "rmsnorm_backward: expected rstd of dtype float32 for input of dtype bfloat16, "
               "got bfloat16");
}

TEST(RmsNorm, ErrorsNameTheShapes) {
  Tensor x = random_tensor({2, 8}, 7);
  expect_error([&] { rmsnorm(x, random_tensor({4}, 8), 1e-5); },
               "rmsnorm: expected weight of shape [D] for input [..., D], got input [2, 8] and "
               "weight [4]");
  expect_error([&] { rmsnorm(x, random_tensor({8}, 8, DType::F32), 1e-5); }, "rmsnorm");
  RmsNormOutput out = rmsnorm_forward(x, random_tensor({8}, 8), 1e-5);
  expect_error([&] { rmsnorm_backward(random_tensor({2, 4}, 9), x, random_tensor({8}, 8), out.rstd); },
               "rmsnorm_backward: expected grad [2, 8] and rstd [2]");
}

}  // namespace
}  // namespace moegrad
