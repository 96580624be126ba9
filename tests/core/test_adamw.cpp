#include <cmath>

#include "core/ops/adamw.h"
#include "core/ops/multi_tensor.h"
#include "core/ops/unary.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

using testing::all_close;
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
    Reference ref{p.to_vector<double>(), std::vector<double>(15, 0.0),
                  std::vector<double>(15, 0.0)};
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

TEST(AdamW, MultiEqualsPerTensorStepsBitForBit) {
  // Per-tensor lr, decay and step; an empty tensor, a transposed expert slice and an f32 tensor
  // among f64s.
  Tensor stacked = random_tensor({3, 4, 3}, 30);
  const Tensor before = stacked.clone();
  std::vector<Tensor> params = {random_tensor({5}, 31), zeros({0}, DType::F64),
                                stacked.select(0, 1).t(), random_tensor({2, 3}, 32, DType::F32)};
  std::vector<Tensor> single;
  for (const Tensor& p : params) single.push_back(p.clone());
  std::vector<Tensor> m, v, sm, sv;
  for (const Tensor& p : params) {
    for (auto* state : {&m, &v, &sm, &sv}) state->push_back(zeros(p.shape(), p.dtype()));
  }
  for (int64_t k = 1; k <= 3; ++k) {
    std::vector<AdamWTensors> entries;
    for (size_t i = 0; i < params.size(); ++i) {
      const Tensor g =
          random_tensor(params[i].shape(), 40 + 10 * uint64_t(k) + i, params[i].dtype());
      const double lr = 0.01 * double(i + 1), wd = i % 2 ? 0.1 : 0.0;
      const int64_t step = int64_t(i) + k;
      entries.push_back({params[i], g, m[i], v[i], lr, wd, step});
      adamw_step(single[i], g, sm[i], sv[i], lr, 0.9, 0.95, 1e-8, wd, step);
    }
    adamw_step_multi(entries, 0.9, 0.95, 1e-8);
  }
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_ALL_CLOSE(params[i], single[i], 0, 0) << "tensor " << i;
    EXPECT_ALL_CLOSE(m[i], sm[i], 0, 0) << "tensor " << i;
    EXPECT_ALL_CLOSE(v[i], sv[i], 0, 0) << "tensor " << i;
  }
  EXPECT_ALL_CLOSE(stacked.select(0, 0), before.select(0, 0), 0, 0);
  EXPECT_ALL_CLOSE(stacked.select(0, 2), before.select(0, 2), 0, 0);
  adamw_step_multi({}, 0.9, 0.95, 1e-8);  // nothing to do
}

// An entry whose gradient is undefined (a parameter no token reached) is skipped: nothing of it
// is read or written, and its step count need not be valid. The others update as alone.
TEST(AdamW, MultiSkipsAnEntryWithoutAGradient) {
  const Tensor idle = random_tensor({4}, 33), idle_m = random_tensor({4}, 34);
  const Tensor idle_before = idle.clone(), m_before = idle_m.clone();
  Tensor p = random_tensor({5}, 35), alone = p.clone();
  const Tensor g = random_tensor({5}, 36);
  Tensor m = zeros({5}, DType::F64), v = zeros({5}, DType::F64);
  const AdamWTensors skipped{idle, Tensor(), idle_m, idle_m.clone(), 0.1, 0.1, 0};
  adamw_step_multi({skipped, {p, g, m, v, 0.1, 0.1, 1}, skipped}, 0.9, 0.95, 1e-8);
  adamw_step(alone, g, zeros({5}, DType::F64), zeros({5}, DType::F64), 0.1, 0.9, 0.95, 1e-8, 0.1,
             1);
  EXPECT_ALL_CLOSE(p, alone, 0, 0);
  EXPECT_ALL_CLOSE(idle, idle_before, 0, 0);
  EXPECT_ALL_CLOSE(idle_m, m_before, 0, 0);
  adamw_step_multi({skipped}, 0.9, 0.95, 1e-8);  // nothing to do
  EXPECT_ALL_CLOSE(idle, idle_before, 0, 0);
}

// grad_scale reads every gradient times the scale: the same bits as scaling the gradients in
// place first (scale_, as clipping did), in f64 and f32; a bf16 gradient's product is not
// rounded back to bf16, so it matches an f32 copy of the gradient scaled in f32.
TEST(AdamW, GradScaleEqualsScalingTheGradientsFirst) {
  const double scale = 0.37;
  for (int64_t k = 1; k <= 3; ++k) {
    SCOPED_TRACE(::testing::Message() << "seed " << k);
    const Tensor p64 = random_tensor({7, 5}, 500 + k),
                 p32 = random_tensor({300}, 510 + k, DType::F32);
    const Tensor master = random_tensor({40}, 520 + k, DType::F32);
    const Tensor g64 = random_tensor({7, 5}, 530 + k),
                 g32 = random_tensor({300}, 540 + k, DType::F32);
    const Tensor g16 = random_tensor({40}, 550 + k, DType::BF16);
    auto run = [&](const std::vector<Tensor>& grads, double grad_scale) {
      std::vector<Tensor> out = {p64.clone(), p32.clone(), master.clone(),
                                 zeros({40}, DType::BF16)};
      std::vector<AdamWTensors> entries;
      for (size_t i = 0; i < 3; ++i) {
        const Tensor m = abs(random_tensor(out[i].shape(), 560 + i, out[i].dtype()));
        entries.push_back({out[i], grads[i], m, m.clone(), 0.01, 0.1, k});
      }
      entries[2].bf16_param = out[3];
      adamw_step_multi(entries, 0.9, 0.95, 1e-8, grad_scale);
      return out;
    };
    const std::vector<Tensor> fused = run({g64, g32, g16}, scale);
    std::vector<Tensor> scaled = {g64.clone(), g32.clone(), g16.to(DType::F32)};
    scale_(scaled, scale);
    const std::vector<Tensor> first = run(scaled, 1.0);
    for (size_t i = 0; i < fused.size(); ++i) EXPECT_ALL_CLOSE(fused[i], first[i], 0, 0) << i;
    EXPECT_FALSE(all_close(fused[0], run({g64, g32, g16}, 1.0)[0], 0, 0));
  }
  const Tensor p = random_tensor({3}, 570);
  expect_error(
      [&] {
        adamw_step_multi({{p, p.clone(), p.clone(), p.clone()}}, 0.9, 0.95, 1e-8, -1);
      },
      "adamw_step_multi: grad_scale must be finite and >= 0, got -1");
}

TEST(AdamW, AnF32MasterTakesABf16GradientAndRoundsIntoItsBf16Parameter) {
  const AdamWConfig c{0.01, 0.9, 0.95, 1e-8, 0.1};
  // A transposed bf16 expert slice: the rounded copy goes where it lies.
  Tensor stacked = random_tensor({3, 5, 4}, 50, DType::BF16);
  const Tensor before = stacked.clone();
  const Tensor model = stacked.select(0, 1).t();  // [4, 5], strided
  Tensor master = model.to(DType::F32), m = zeros({4, 5}, DType::F32),
         v = zeros({4, 5}, DType::F32);
  Tensor ref = master.clone(), rm = m.clone(), rv = v.clone();
  for (int64_t t = 1; t <= 3; ++t) {
    const Tensor g = random_tensor({4, 5}, 60 + t, DType::BF16);
    adamw_step(master, g, m, v, c, t, model);
    adamw_step(ref, g.to(DType::F32), rm, rv, c, t);  // the same update on the widened gradient
  }
  EXPECT_ALL_CLOSE(master, ref, 0, 0);
  EXPECT_ALL_CLOSE(m, rm, 0, 0);
  EXPECT_ALL_CLOSE(v, rv, 0, 0);
  EXPECT_EQ(model.dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(model, master.to(DType::BF16), 0, 0);
  EXPECT_FALSE(all_close(model, before.select(0, 1).t(), 0, 0));
  EXPECT_ALL_CLOSE(stacked.select(0, 0), before.select(0, 0), 0, 0);
  EXPECT_ALL_CLOSE(stacked.select(0, 2), before.select(0, 2), 0, 0);

  // The multi-tensor form, bf16 masters among f32 tensors, equals it bit for bit.
  Tensor model2 = before.select(0, 1).t().clone(), master2 = model2.to(DType::F32);
  Tensor m2 = zeros({4, 5}, DType::F32), v2 = zeros({4, 5}, DType::F32);
  Tensor plain = random_tensor({7}, 70, DType::F32), pm = zeros({7}, DType::F32),
         pv = zeros({7}, DType::F32);
  for (int64_t t = 1; t <= 3; ++t) {
    const AdamWTensors mixed{
        master2, random_tensor({4, 5}, 60 + t, DType::BF16), m2, v2, c.lr, c.weight_decay, t,
        model2};
    AdamWTensors f32{plain, random_tensor({7}, 80 + t, DType::F32), pm, pv};
    f32.step = t;
    adamw_step_multi({f32, mixed}, c.beta1, c.beta2, c.eps);
  }
  EXPECT_ALL_CLOSE(master2, master, 0, 0);
  EXPECT_ALL_CLOSE(model2, model, 0, 0);
}

TEST(AdamW, MixedPrecisionErrors) {
  Tensor p = zeros({2, 3}, DType::F32), b = zeros({2, 3}, DType::BF16);
  expect_error([&] { adamw_step(p, b, p.clone(), p.clone(), AdamWConfig{}, 1); },
               "adamw_step: grad is bfloat16, expected float32");
  expect_error([&] { adamw_step(p, p.clone(), p.clone(), p.clone(), AdamWConfig{}, 1, p.clone()); },
               "adamw_step: a master copy must be float32 and its model parameter bfloat16, got "
               "float32 and float32");
  expect_error(
      [&] {
        adamw_step(p, b, p.clone(), p.clone(), AdamWConfig{}, 1, zeros({3, 2}, DType::BF16));
      },
      "and bf16_param [3, 2] must share one shape");
}

TEST(AdamW, MultiErrorsNameTheTensor) {
  Tensor p = zeros({2, 3}, DType::F64), g = zeros({3, 2}, DType::F64);
  AdamWTensors good{p, p.clone(), p.clone(), p.clone()};
  expect_error(
      [&] {
        adamw_step_multi({good, {p, g, p.clone(), p.clone()}}, 0.9, 0.95, 1e-8);
      },
      "adamw_step_multi (tensor 1): param [2, 3], grad [3, 2], exp_avg [2, 3] and "
      "exp_avg_sq [2, 3] must share one shape");
  AdamWTensors step0 = good;
  step0.step = 0;
  expect_error([&] { adamw_step_multi({step0}, 0.9, 0.95, 1e-8); },
               "adamw_step_multi (tensor 0): step counts from 1, got 0");
  expect_error([&] { adamw_step_multi({good}, 1.0, 0.95, 1e-8); },
               "adamw_step_multi: betas must lie in [0, 1), got 1 and 0.95");
}

}  // namespace
}  // namespace moegrad
