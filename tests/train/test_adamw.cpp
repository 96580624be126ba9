#include "core/ops/adamw.h"
#include "tests/testing.h"
#include "train/adamw.h"

namespace moegrad::train {
namespace {

using testing::expect_error;
using testing::random_tensor;

void set_grad(const Variable& p, const Tensor& g) { p.impl()->grad = g; }

bool bit_identical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

// w [4, 3] whole, emb [6, 3] rows {1, 2, 4}, norm [3] frozen.
struct Model {
  NamedParameters params{{"w", Variable(random_tensor({4, 3}, 1), true)},
                         {"emb", Variable(random_tensor({6, 3}, 2), true)},
                         {"norm", Variable(random_tensor({3}, 3), true)}};
  FreezeMask mask = FreezeMask::build(parse_freeze_rules({"train w; rows emb:1-2,4"}), params);
  Model() { mask.apply(params); }
  const Variable& operator[](size_t i) const { return params[i].second; }
};

TEST(TrainAdamW, WholeParameterMatchesCoreAdamW) {
  Model m;
  const AdamWOptions o{0.8, 0.9, 1e-6, 0.05};
  AdamW opt(m.params, m.mask, o);
  Tensor p = m[0].data().clone(), exp_avg = zeros({4, 3}, DType::F64),
         exp_avg_sq = zeros({4, 3}, DType::F64);
  for (int64_t t = 1; t <= 3; ++t) {
    const Tensor g = random_tensor({4, 3}, 10 + t);
    set_grad(m[0], g);
    const double lr = 0.01 * double(t);
    opt.step(lr);
    adamw_step(p, g, exp_avg, exp_avg_sq, lr, o.beta1, o.beta2, o.eps, o.weight_decay, t);
  }
  EXPECT_TRUE(bit_identical(m[0].data(), p));
  EXPECT_EQ(opt.step_count(), 3);
  const auto state = opt.state_tensors();
  EXPECT_TRUE(bit_identical(state[0].second, exp_avg));
  EXPECT_TRUE(bit_identical(state[1].second, exp_avg_sq));
}

TEST(TrainAdamW, RowMaskUpdatesOnlyTrainedRows) {
  Model m;
  const Tensor before = m[1].data().clone();
  AdamW opt(m.params, m.mask, AdamWOptions{});
  // The reference: core adamw_step on the trained rows, gathered.
  const std::vector<int64_t> rows{1, 2, 4};
  Tensor ref = zeros({3, 3}, DType::F64);
  for (int64_t i = 0; i < 3; ++i) ref.select(0, i).copy_(before.select(0, rows[size_t(i)]));
  Tensor exp_avg = zeros({3, 3}, DType::F64), exp_avg_sq = zeros({3, 3}, DType::F64);
  for (int64_t t = 1; t <= 3; ++t) {
    const Tensor g = random_tensor({6, 3}, 20 + t);
    set_grad(m[1], g);
    opt.step(1e-2);
    Tensor g_rows = zeros({3, 3}, DType::F64);
    for (int64_t i = 0; i < 3; ++i) g_rows.select(0, i).copy_(g.select(0, rows[size_t(i)]));
    adamw_step(ref, g_rows, exp_avg, exp_avg_sq, 1e-2, 0.9, 0.95, 1e-8, 0.1, t);
  }
  for (int64_t r : {0, 3, 5})
    EXPECT_TRUE(bit_identical(m[1].data().select(0, r), before.select(0, r))) << "row " << r;
  for (int64_t i = 0; i < 3; ++i) {
    const int64_t r = rows[size_t(i)];
    EXPECT_TRUE(bit_identical(m[1].data().select(0, r), ref.select(0, i))) << "row " << r;
    EXPECT_FALSE(bit_identical(m[1].data().select(0, r), before.select(0, r))) << "row " << r;
  }
  const auto state = opt.state_tensors();
  EXPECT_EQ(state[3].first, "exp_avg/emb");
  EXPECT_TRUE(bit_identical(state[3].second, exp_avg));
  EXPECT_TRUE(bit_identical(state[4].second, exp_avg_sq));
}

TEST(TrainAdamW, FrozenParametersKeepValuesAndGetNoState) {
  Model m;
  const Tensor before = m[2].data().clone();
  AdamW opt(m.params, m.mask, AdamWOptions{});
  set_grad(m[2], ones({3}, DType::F64));  // even a stray gradient is ignored
  set_grad(m[0], ones({4, 3}, DType::F64));
  opt.step(0.1);
  EXPECT_TRUE(bit_identical(m[2].data(), before));
  std::vector<std::string> names;
  for (const auto& [name, t] : opt.state_tensors()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"exp_avg/w", "exp_avg_sq/w", "step/w", "exp_avg/emb",
                                             "exp_avg_sq/emb", "step/emb"}));
  EXPECT_EQ(opt.state_bytes(), (12 + 9) * 2 * 8);
  EXPECT_EQ(opt.parameters().size(), 2u);
  EXPECT_EQ(opt.parameters()[1].impl(), m[1].impl());
}

TEST(TrainAdamW, ParameterWithoutGradientIsSkipped) {
  Model m;
  const Tensor w0 = m[0].data().clone(), emb0 = m[1].data().clone();
  AdamW opt(m.params, m.mask, AdamWOptions{});
  set_grad(m[0], random_tensor({4, 3}, 5));
  opt.step(0.1);  // emb has no gradient: no decay, no moments, its step count stays 0
  EXPECT_TRUE(bit_identical(m[1].data(), emb0));
  EXPECT_FALSE(bit_identical(m[0].data(), w0));
  const auto state = opt.state_tensors();
  EXPECT_EQ(state[2].second.item(), 1);
  EXPECT_EQ(state[5].second.item(), 0);
  EXPECT_TRUE(bit_identical(state[3].second, zeros({3, 3}, DType::F64)));
  // Its first update then uses bias correction of step 1, as torch's per-parameter step.
  const Tensor g = random_tensor({6, 3}, 6);
  set_grad(m[1], g);
  opt.step(0.1);
  Tensor ref = emb0.narrow(0, 1, 2).clone();
  adamw_step(ref, g.narrow(0, 1, 2), zeros({2, 3}, DType::F64), zeros({2, 3}, DType::F64), 0.1, 0.9,
             0.95, 1e-8, 0.1, 1);
  EXPECT_TRUE(bit_identical(m[1].data().narrow(0, 1, 2), ref));
  EXPECT_EQ(opt.step_count(), 2);
  EXPECT_EQ(opt.state_tensors()[5].second.item(), 1);
}

TEST(TrainAdamW, GroupsScaleLrAndSetWeightDecay) {
  Model m;
  const Tensor w = m[0].data().clone(), emb = m[1].data().clone();
  AdamW opt(m.params, m.mask, AdamWOptions{},
            {ParamGroup{"no_decay", "{norm,emb}", 0.5, 0.0}, ParamGroup{"later", "emb", 2.0, 1.0}});
  const Tensor gw = random_tensor({4, 3}, 7), ge = random_tensor({6, 3}, 8);
  set_grad(m[0], gw);
  set_grad(m[1], ge);
  opt.step(0.1);
  Tensor ref_w = w.clone(), ref_e = emb.narrow(0, 1, 2).clone();
  adamw_step(ref_w, gw, zeros({4, 3}, DType::F64), zeros({4, 3}, DType::F64), 0.1, 0.9, 0.95, 1e-8,
             0.1, 1);
  // The first matching group wins.
  adamw_step(ref_e, ge.narrow(0, 1, 2), zeros({2, 3}, DType::F64), zeros({2, 3}, DType::F64), 0.05,
             0.9, 0.95, 1e-8, 0.0, 1);
  EXPECT_TRUE(bit_identical(m[0].data(), ref_w));
  EXPECT_TRUE(bit_identical(m[1].data().narrow(0, 1, 2), ref_e));
  expect_error(
      [&] {
        AdamW(m.params, m.mask, AdamWOptions{}, {ParamGroup{"no_decay", "bias"}});
      },
      "AdamW group 'no_decay': pattern 'bias' matches no parameter");
  expect_error(
      [&] {
        AdamW(m.params, m.mask, AdamWOptions{0.9, 1.0, 1e-8, 0.1});
      },
      "AdamW: betas must lie in [0, 1), got 0.9 and 1");
}

TEST(TrainAdamW, StateRoundTripContinuesBitIdentically) {
  Model a;
  AdamW opt_a(a.params, a.mask, AdamWOptions{});
  for (int64_t t = 1; t <= 2; ++t) {
    set_grad(a[0], random_tensor({4, 3}, 30 + t));
    if (t == 2) set_grad(a[1], random_tensor({6, 3}, 40 + t));
    opt_a.step(0.01);
  }
  // A fresh model holding the same values, and a fresh optimizer given the saved state.
  Model b;
  for (size_t i = 0; i < 3; ++i) b[i].data().copy_(a[i].data());
  AdamW opt_b(b.params, b.mask, AdamWOptions{});
  std::vector<std::pair<std::string, Tensor>> saved;
  for (const auto& [name, t] : opt_a.state_tensors()) saved.emplace_back(name, t.to(DType::F32));
  opt_b.load_state(saved);
  opt_b.set_step_count(opt_a.step_count());
  for (const auto& [name, t] : opt_b.state_tensors())
    EXPECT_EQ(t.dtype(), name.rfind("step/", 0) == 0 ? DType::I64 : DType::F64) << name;

  const Tensor g0 = random_tensor({4, 3}, 50), g1 = random_tensor({6, 3}, 51);
  for (const Model* m : {&a, &b}) {
    set_grad((*m)[0], g0);
    set_grad((*m)[1], g1);
  }
  // f32 state loses precision: compare with a run that saved in f64.
  Model c;
  for (size_t i = 0; i < 3; ++i) c[i].data().copy_(a[i].data());
  AdamW opt_c(c.params, c.mask, AdamWOptions{});
  opt_c.load_state(opt_a.state_tensors());
  set_grad(c[0], g0);
  set_grad(c[1], g1);
  opt_a.step(0.01);
  opt_c.step(0.01);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(bit_identical(a[i].data(), c[i].data())) << i;
  opt_b.step(0.01);
  EXPECT_ALL_CLOSE(b[0].data(), a[0].data(), 1e-6, 1e-6);
  EXPECT_EQ(opt_b.step_count(), 3);
}

// The Model's parameters in bf16, as `precision = bf16` gives them to the optimizer.
struct Bf16Model : Model {
  Bf16Model() {
    for (auto& [name, p] : params) p.data() = p.data().to(DType::BF16);
  }
};

TEST(TrainAdamW, Bf16ParametersTrainThroughF32Masters) {
  Bf16Model m;
  const Tensor before_w = m[0].data().clone(), before_emb = m[1].data().clone(),
               before_norm = m[2].data().clone();
  AdamW opt(m.params, m.mask, AdamWOptions{});
  // Masters of the trained part only, made from the values; f32 moments.
  const auto state = opt.state_tensors();
  std::vector<std::string> names;
  for (const auto& [name, t] : state) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"exp_avg/w", "exp_avg_sq/w", "master/w", "step/w",
                                             "exp_avg/emb", "exp_avg_sq/emb", "master/emb",
                                             "step/emb"}));
  EXPECT_EQ(state[0].second.dtype(), DType::F32);
  EXPECT_TRUE(bit_identical(state[2].second, before_w));
  EXPECT_EQ(state[6].second.shape(), Shape({3, 3}));
  EXPECT_TRUE(bit_identical(state[6].second.select(0, 2), before_emb.select(0, 4)));
  EXPECT_EQ(opt.state_bytes(), 3 * 4 * (12 + 9));

  // The reference: f32 AdamW on the masters, with the bf16 gradients widened.
  Tensor ref_w = before_w.to(DType::F32), mw = zeros({4, 3}, DType::F32),
         vw = zeros({4, 3}, DType::F32);
  for (int64_t t = 1; t <= 3; ++t) {
    const Tensor g = random_tensor({4, 3}, 60 + t, DType::BF16);
    set_grad(m[0], g);
    set_grad(m[1], random_tensor({6, 3}, 70 + t, DType::BF16));
    opt.step(1e-2);
    adamw_step(ref_w, g.to(DType::F32), mw, vw, 1e-2, 0.9, 0.95, 1e-8, 0.1, t);
  }
  EXPECT_TRUE(bit_identical(opt.state_tensors()[2].second, ref_w));
  EXPECT_EQ(m[0].data().dtype(), DType::BF16);
  EXPECT_TRUE(bit_identical(m[0].data(), ref_w.to(DType::BF16)));
  for (int64_t r : {0, 3, 5})
    EXPECT_TRUE(bit_identical(m[1].data().select(0, r), before_emb.select(0, r))) << "row " << r;
  EXPECT_FALSE(bit_identical(m[1].data().select(0, 4), before_emb.select(0, 4)));
  EXPECT_TRUE(bit_identical(m[2].data(), before_norm));

  // Loading the state restores the masters and, rounded, the bf16 parameters.
  Bf16Model fresh;
  AdamW opt_b(fresh.params, fresh.mask, AdamWOptions{});
  opt_b.load_state(opt.state_tensors());
  EXPECT_TRUE(bit_identical(fresh[0].data(), m[0].data()));
  EXPECT_TRUE(bit_identical(fresh[1].data().select(0, 4), m[1].data().select(0, 4)));
  std::vector<std::pair<std::string, Tensor>> no_master;
  for (const auto& e : opt.state_tensors())
    if (e.first != "master/w") no_master.push_back(e);
  expect_error([&] { opt_b.load_state(no_master); }, "AdamW.load_state: missing tensor master/w");
}

TEST(TrainAdamW, LoadStateIsStrict) {
  Model m;
  AdamW opt(m.params, m.mask, AdamWOptions{});
  const auto good = opt.state_tensors();
  auto without = [&](const std::string& name) {
    std::vector<std::pair<std::string, Tensor>> s;
    for (const auto& e : good)
      if (e.first != name) s.push_back(e);
    return s;
  };
  expect_error([&] { opt.load_state(without("exp_avg_sq/emb")); },
               "AdamW.load_state: missing tensor exp_avg_sq/emb");
  auto extra = good;
  extra.emplace_back("exp_avg/norm", zeros({3}, DType::F64));
  expect_error([&] { opt.load_state(extra); },
               "AdamW.load_state: unexpected tensor exp_avg/norm (state of a parameter this mask "
               "freezes, or of another model?)");
  auto wrong = without("exp_avg/emb");
  wrong.emplace_back("exp_avg/emb", ones({6, 3}, DType::F64));
  expect_error([&] { opt.load_state(wrong); },
               "AdamW.load_state: tensor exp_avg/emb has shape [6, 3], expected [3, 3]");
  auto twice = good;
  twice.push_back(good[0]);
  expect_error([&] { opt.load_state(twice); }, "AdamW.load_state: tensor exp_avg/w given twice");
  auto bad_step = without("step/w");
  bad_step.emplace_back("step/w", from_vector(std::vector<int64_t>{-1}, {1}));
  expect_error([&] { opt.load_state(bad_step); },
               "AdamW.load_state: tensor step/w holds -1, expected a step count");
  // A failed load changes nothing.
  auto changed = without("exp_avg/w");
  changed.emplace_back("exp_avg/w", ones({4, 3}, DType::F64));
  changed.emplace_back("bogus", ones({1}, DType::F64));
  expect_error([&] { opt.load_state(changed); }, "unexpected tensor bogus");
  EXPECT_TRUE(bit_identical(opt.state_tensors()[0].second, zeros({4, 3}, DType::F64)));
}

// The optimizer cuts its pieces of a parameter once; a parameter given a new data tensor (a
// whole one, or one whose trained rows lie elsewhere) is updated where its data now lies.
TEST(TrainAdamW, AParameterGivenNewDataIsUpdatedThere) {
  Model m;
  AdamW opt(m.params, m.mask, AdamWOptions{});
  const Tensor g0 = random_tensor({4, 3}, 20), ge = random_tensor({6, 3}, 21);
  set_grad(m[0], g0);
  set_grad(m[1], ge);
  opt.step(0.1);
  const Tensor old_w = m[0].data(), old_w_values = old_w.clone();
  Variable w = m[0], emb = m[1];
  w.data() = m[0].data().clone();
  emb.data() = zeros({9, 3}, DType::F64).narrow(0, 3, 6);  // a view at an offset
  Tensor w_ref = w.data().clone(), emb_ref = emb.data().narrow(0, 1, 2).clone();
  const Tensor g1 = random_tensor({4, 3}, 22), ge1 = random_tensor({6, 3}, 23);
  set_grad(m[0], g1);
  set_grad(m[1], ge1);
  const auto state = opt.state_tensors();  // step 1's moments, to step by hand
  const Tensor m0 = state[0].second.clone(), v0 = state[1].second.clone();
  const Tensor me = state[3].second.narrow(0, 0, 2).clone(),
               ve = state[4].second.narrow(0, 0, 2).clone();
  opt.step(0.1);
  adamw_step(w_ref, g1, m0, v0, 0.1, 0.9, 0.95, 1e-8, 0.1, 2);
  adamw_step(emb_ref, ge1.narrow(0, 1, 2), me, ve, 0.1, 0.9, 0.95, 1e-8, 0.1, 2);
  EXPECT_TRUE(bit_identical(w.data(), w_ref));
  EXPECT_TRUE(bit_identical(emb.data().narrow(0, 1, 2), emb_ref));
  EXPECT_TRUE(bit_identical(old_w, old_w_values));  // the replaced tensor is left alone
}

// The step's gradients are not held past it: cleared, their memory goes back to the allocator.
TEST(TrainAdamW, AStepHoldsNoGradientAfterwards) {
  Model m;
  AdamW opt(m.params, m.mask, AdamWOptions{});
  std::weak_ptr<Storage> grads[2];
  for (size_t i = 0; i < 2; ++i) {
    const Tensor g = random_tensor(m[i].shape(), 30 + i);
    grads[i] = g.storage();
    set_grad(m[i], g);
  }
  opt.step(0.1);
  opt.zero_grad();
  EXPECT_TRUE(grads[0].expired());
  EXPECT_TRUE(grads[1].expired());
}

TEST(TrainAdamW, ZeroGradAndStepCount) {
  Model m;
  AdamW opt(m.params, m.mask, AdamWOptions{});
  set_grad(m[0], ones({4, 3}, DType::F64));
  opt.zero_grad();
  EXPECT_FALSE(m[0].grad().defined());
  opt.step(0.1);  // no gradient anywhere: nothing moves, the count still advances
  EXPECT_EQ(opt.step_count(), 1);
  opt.set_step_count(7);
  EXPECT_EQ(opt.step_count(), 7);
  expect_error([&] { opt.set_step_count(-1); }, "AdamW.set_step_count: expected >= 0, got -1");
  expect_error([&] { opt.step(-1); }, "AdamW.step: lr must be finite and >= 0, got -1");
  set_grad(m[0], ones({3, 4}, DType::F64));
  expect_error([&] { opt.step(0.1); },
               "AdamW.step: gradient of w has shape [3, 4], the parameter [4, 3]");
}

}  // namespace
}  // namespace moegrad::train
