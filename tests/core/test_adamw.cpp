#include <cmath>

#include "core/ops/adamw.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

using testing::expect_error;

// The textbook AdamW, element by element in f64.
struct Reference {
  std::vector<double> p, m, v;
  void step(const std::vector<double>& g, const AdamWConfig& c, int64_t t) {
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] -= c.lr * c.weight_decay * p[i];
      m[i] = c.beta1 * m[i] + (1 - c.beta1) * g[i];
      v[i] = c.beta2 * v[i] + (1 - c.beta2) * g[i] * g[i];
      const double mhat = m[i] / (1 - std::pow(c.beta1, double(t)));
      const double vhat = v[i] / (1 - std::pow(c.beta2, double(t)));
      p[i] -= c.lr * mhat / (std::sqrt(vhat) + c.eps);
    }
  }
};

TEST(AdamW, MatchesReferenceOverSeveralSteps) {
  const AdamWConfig c{0.01, 0.9, 0.95, 1e-8, 0.1};
  for (DType dt : {DType::F64, DType::F32}) {
    Tensor p = random_tensor({3, 5}, 1, dt);
    Tensor m = zeros({3, 5}, dt), v = zeros({3, 5}, dt);
    Reference ref{p.to_vector<double>(), std::vector<double>(15, 0.0), std::vector<double>(15, 0.0)};
    for (int64_t t = 1; t <= 5; ++t) {
      Tensor g = random_tensor({3, 5}, 10 + t, dt);
      adamw_step(p, g, m, v, c, t);
      ref.step(g.to_vector<double>(), c, t);
    }
    const double tol = dt == DType::F64 ? 1e-13 : 1e-6;
    EXPECT_ALL_CLOSE(p, from_vector(ref.p, {3, 5}), tol, tol);
    EXPECT_ALL_CLOSE(m, from_vector(ref.m, {3, 5}), tol, tol);
    EXPECT_ALL_CLOSE(v, from_vector(ref.v, {3, 5}), tol, tol);
  }
}

TEST(AdamW, UpdatesAStridedExpertSliceInPlace) {
  // Expert 1 of a stacked [E, 4, 3] weight, seen transposed; its neighbours must not move.
  Tensor stacked = random_tensor({3, 4, 3}, 2);
  Tensor before = stacked.clone();
  Tensor m_all = zeros({3, 4, 3}, DType::F64), v_all = zeros({3, 4, 3}, DType::F64);
  Tensor p = stacked.select(0, 1).t();
  Tensor m = m_all.select(0, 1).t(), v = v_all.select(0, 1).t();
  const AdamWConfig c{0.1, 0.9, 0.999, 1e-8, 0.01};
  Reference ref{p.contiguous().to_vector<double>(), std::vector<double>(12, 0.0),
                std::vector<double>(12, 0.0)};
  for (int64_t t = 1; t <= 3; ++t) {
    Tensor g = random_tensor({3, 4}, 20 + t);
    adamw_step(p, g, m, v, c, t);
    ref.step(g.to_vector<double>(), c, t);
  }
  EXPECT_ALL_CLOSE(p, from_vector(ref.p, {3, 4}), 1e-13, 1e-13);
  EXPECT_ALL_CLOSE(m, from_vector(ref.m, {3, 4}), 1e-13, 1e-13);
  EXPECT_ALL_CLOSE(stacked.select(0, 0), before.select(0, 0), 0, 0);
  EXPECT_ALL_CLOSE(stacked.select(0, 2), before.select(0, 2), 0, 0);
}

TEST(AdamW, Errors) {
  Tensor p = zeros({2, 3}, DType::F64), g = zeros({3, 2}, DType::F64);
  expect_error([&] { adamw_step(p, g, p.clone(), p.clone(), AdamWConfig{}, 1); },
               "adamw_step: param [2, 3], grad [3, 2], exp_avg [2, 3] and exp_avg_sq [2, 3] "
               "must share one shape");
  expect_error([&] { adamw_step(p, p.clone(), p.clone(), p.clone(), AdamWConfig{}, 0); },
               "adamw_step: step counts from 1, got 0");
  expect_error([&] { adamw_step(p, p.to(DType::F32), p.clone(), p.clone(), AdamWConfig{}, 1); },
               "adamw_step");
}

}  // namespace
}  // namespace moegrad
