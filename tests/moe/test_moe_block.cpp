#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "autograd/ops.h"
#include "core/ops/join.h"
#include "moe/experts.h"
#include "moe/losses.h"
#include "moe/router.h"
#include "moe/sparse_moe.h"
#include "tests/nn/param_gradcheck.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;
using testing::f64_init;
using testing::project;

OlmoeConfig tiny_config() {
  OlmoeConfig c;
  c.hidden_size = 4;
  c.intermediate_size = 3;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.num_experts = 4;
  c.num_experts_per_tok = 2;
  return c;
}

TEST(Router, SoftmaxOverAllExpertsThenTopK) {
  Tensor logits = from_vector<double>({0.0, 3.0, 1.0, 2.0, 5.0, 4.0, -1.0, 0.0}, {2, 4});
  Routing r = route(Variable(logits), 2, false);
  EXPECT_EQ(r.indices.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 0, 1}));
  std::vector<double> p = r.probs.to_vector<double>();
  const double z0 = 1 + std::exp(3.0) + std::exp(1.0) + std::exp(2.0);
  EXPECT_NEAR(p[1], std::exp(3.0) / z0, 1e-12);
  std::vector<double> w = r.weights.data().to_vector<double>();
  EXPECT_NEAR(w[0], std::exp(3.0) / z0, 1e-12);
  EXPECT_NEAR(w[1], std::exp(2.0) / z0, 1e-12);
  EXPECT_LT(w[0] + w[1], 1.0);  // not renormalised

  Routing n = route(Variable(logits), 2, true);
  std::vector<double> wn = n.weights.data().to_vector<double>();
  EXPECT_NEAR(wn[0] + wn[1], 1.0, 1e-12);
  EXPECT_NEAR(wn[0] / wn[1], std::exp(1.0), 1e-12);
  EXPECT_GRADCHECK([](const std::vector<Variable>& v) { return route(v[0], 2, true).weights; },
                   {logits});
  testing::expect_error([&] { route(Variable(logits), 5, false); }, "route");
}

// y_n = sum_j w[n, j] * down_e(silu(gate_e x_n) * up_e x_n), one token at a time.
Tensor naive_experts(const OlmoeExperts& ex, const Tensor& x, const Tensor& w, const Tensor& idx) {
  Tensor out = zeros(x.shape(), x.dtype());
  for (int64_t n = 0; n < x.size(0); ++n)
    for (int64_t j = 0; j < idx.size(1); ++j) {
      const int64_t e = int64_t(idx.select(0, n).select(0, j).item());
      Variable xn(x.narrow(0, n, 1));
      Variable g = linear(xn, Variable(ex.expert_weight(e, "gate_proj")));
      Variable u = linear(xn, Variable(ex.expert_weight(e, "up_proj")));
      Tensor y = linear(silu(g) * u, Variable(ex.expert_weight(e, "down_proj"))).data();
      out.narrow(0, n, 1).copy_(add(Variable(out.narrow(0, n, 1).clone()),
                                    Variable(y) * w.select(0, n).select(0, j).item())
                                    .data());
    }
  return out;
}

// The HF names of the given experts' weights, relative to OlmoeExperts.
std::vector<std::string> expert_params(const std::vector<int64_t>& experts,
                                       const std::string& prefix = "") {
  std::vector<std::string> names;
  for (int64_t e : experts)
    for (const char* p : {"gate_proj", "up_proj", "down_proj"})
      names.push_back(prefix + std::to_string(e) + "." + p + ".weight");
  return names;
}

TEST(OlmoeExperts, DroplessDispatchMatchesPerTokenReference) {
  Generator gen(1);
  OlmoeExperts ex(4, 4, 3, f64_init(gen));
  Tensor x = random_tensor({5, 4}, 2);
  Tensor w = random_tensor({5, 2}, 3);
  // Expert 2 receives no token; expert 3 receives most.
  Tensor idx = from_vector<int64_t>({3, 0, 1, 3, 3, 1, 0, 3, 3, 0}, {5, 2});
  Tensor y = ex.forward(Variable(x), Variable(w), idx).data();
  EXPECT_ALL_CLOSE(y, naive_experts(ex, x, w, idx), 1e-12);
  // Bit-identical on a second run.
  EXPECT_EQ(ex.forward(Variable(x), Variable(w), idx).data().to_vector<double>(),
            y.to_vector<double>());

  EXPECT_GRADCHECK([&](const std::vector<Variable>& v) { return ex.forward(v[0], v[1], idx); },
                   {x, w});
  Variable xv(x), wv(w);
  EXPECT_TRUE(testing::param_grads_ok(ex, [&] { return project(ex.forward(xv, wv, idx), 4); },
                                      expert_params({0, 1, 3})));
  EXPECT_FALSE(ex.parameter("2.gate_proj.weight").grad().defined());  // ran on no token
}

TEST(OlmoeExperts, AnExpertIndexOutOfRangeIsNamed) {
  OlmoeExperts ex(4, 4, 3);
  const Tensor idx = from_vector<int64_t>({1, 4, 0, 2}, {2, 2});
  EXPECT_EQ(testing::error_of([&] {
              ex.forward(Variable(zeros({2, 4})), Variable(zeros({2, 2})), idx);
            }),
            "group_by_index: index 4 out of range [0, 4) for OlmoeExperts' experts");
}

TEST(OlmoeExperts, EmptyBatch) {
  OlmoeExperts ex(2, 4, 3);
  Variable y =
      ex.forward(Variable(zeros({0, 4})), Variable(zeros({0, 1})), zeros({0, 1}, DType::I64));
  EXPECT_EQ(y.shape(), Shape({0, 4}));
}

TEST(OlmoeExperts, PerExpertParametersViewOneStackPerProjection) {
  OlmoeExperts ex(3, 4, 2);
  std::vector<std::string> names;
  for (auto& [n, p] : ex.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, expert_params({0, 1, 2}));
  EXPECT_EQ(ex.parameter("1.gate_proj.weight").shape(), Shape({2, 4}));
  EXPECT_EQ(ex.parameter("1.down_proj.weight").shape(), Shape({4, 2}));
  EXPECT_EQ(ex.gate_stack().shape(), Shape({3, 2, 4}));
  EXPECT_EQ(ex.up_stack().shape(), Shape({3, 2, 4}));
  EXPECT_EQ(ex.down_stack().shape(), Shape({3, 4, 2}));
  EXPECT_TRUE(ex.down_stack().is_contiguous());
  EXPECT_EQ(ex.num_parameters(), 3 * 3 * 8);
  // Each expert's gate and up lie back to back (HF's gate_up_proj), so the grouped GEMMs read
  // both as one [2I, H] matrix without a copy.
  for (int64_t e = 0; e < 3; ++e) {
    const Tensor gate = ex.expert_weight(e, "gate_proj"), up = ex.expert_weight(e, "up_proj");
    EXPECT_TRUE(gate.is_contiguous() && up.is_contiguous());
    EXPECT_EQ(up.offset(), gate.offset() + gate.numel());
    EXPECT_TRUE(concat_adjacent({gate, up}).shares_storage(gate));
  }

  ex.expert_weight(1, "up_proj").fill_(7.0);
  EXPECT_EQ(ex.up_stack().select(0, 1).select(1, 3).to_vector<float>(),
            (std::vector<float>{7.0f, 7.0f}));
  EXPECT_EQ(ex.up_stack().select(0, 0).select(0, 0).select(0, 0).item(), 0.0);
  ex.down_stack().select(0, 2).fill_(5.0);
  EXPECT_EQ(ex.parameter("2.down_proj.weight").data().select(0, 3).to_vector<float>(),
            (std::vector<float>{5.0f, 5.0f}));
  EXPECT_TRUE(ex.expert_weight(2, "gate_proj").shares_storage(ex.gate_stack()));
  EXPECT_FALSE(ex.gate_stack().shares_storage(ex.down_stack()));
  testing::expect_error([&] { ex.expert_weight(3, "gate_proj"); }, "expert 3 out of range");
  testing::expect_error([&] { ex.expert_weight(0, "w1"); }, "unknown projection 'w1'");

  Variable w = ex.parameter("1.gate_proj.weight");
  w.data() = w.data().clone();
  testing::expect_error([&] { ex.gate_stack(); },
                        "expert 1's gate_proj weight no longer views its slot");
}

TEST(OlmoeExperts, FrozenExpertsGetNoGradient) {
  Generator gen(2);
  OlmoeExperts ex(4, 4, 3, f64_init(gen));
  Tensor x = random_tensor({6, 4}, 3), w = random_tensor({6, 2}, 4);
  // Every expert receives tokens.
  Tensor idx = from_vector<int64_t>({0, 1, 2, 3, 1, 0, 3, 2, 2, 1, 0, 3}, {6, 2});
  Variable xv(x), wv(w);
  auto loss = [&] { return project(ex.forward(xv, wv, idx), 5); };
  loss().backward();
  std::map<std::string, Tensor> all;
  for (auto& [n, p] : ex.named_parameters()) all[n] = p.grad();

  ex.zero_grad();
  for (const std::string& n : expert_params({0, 2})) ex.set_requires_grad(n, false);
  Variable y = ex.forward(xv, wv, idx);
  EXPECT_EQ(y.data().to_vector<double>(),
            ex.forward(Variable(x), Variable(w), idx).data().to_vector<double>());
  project(y, 5).backward();
  for (const std::string& n : expert_params({0, 2}))
    EXPECT_FALSE(ex.parameter(n).grad().defined()) << n;
  for (const std::string& n : expert_params({1, 3})) {
    Tensor g = ex.parameter(n).grad();
    ASSERT_TRUE(g.defined()) << n;
    EXPECT_EQ(g.shape(), ex.parameter(n).shape()) << n;
    EXPECT_EQ(g.to_vector<double>(), all[n].to_vector<double>()) << n;
  }
}

// When neither the input nor the routing weights train, only the rows of experts with a
// trained weight are computed in the graph: the rest keep nothing for the backward, and the
// output is the same function.
TEST(OlmoeExperts, FrozenExpertsRowsKeepNothingWhenTheInputIsFrozen) {
  Generator gen(3);
  OlmoeExperts ex(4, 8, 16, f64_init(gen));
  for (const std::string& n : expert_params({0, 1, 2})) ex.set_requires_grad(n, false);
  const Tensor x = random_tensor({64, 8}, 5), w = random_tensor({64, 2}, 6);
  std::vector<int64_t> experts;
  for (int64_t i = 0; i < 64; ++i) experts.insert(experts.end(), {i % 4, (i + 1) % 4});
  const Tensor idx = from_vector(experts, {64, 2});
  EXPECT_ALL_CLOSE(ex.forward(Variable(x), Variable(w), idx).data(), naive_experts(ex, x, w, idx),
                   1e-12);
  auto kept = [&](bool input_trains) {  // the output and what its graph keeps
    const int64_t base = memory_stats(Device::cpu()).current_bytes;
    const Variable y = ex.forward(Variable(x, input_trains), Variable(w), idx);
    return memory_stats(Device::cpu()).current_bytes - base;
  };
  const int64_t frozen_input = kept(false), trained_input = kept(true);
  EXPECT_LT(double(frozen_input), 0.5 * double(trained_input))
      << frozen_input << " bytes kept with a frozen input, " << trained_input << " with a trained one";
}

// Each parameter's gradient after `loss` backward, by name (undefined: none).
std::map<std::string, Tensor> grads_after(const Module& m, const std::function<Variable()>& loss) {
  m.zero_grad();
  loss().backward();
  std::map<std::string, Tensor> grads;
  for (auto& [n, p] : m.named_parameters()) grads[n] = p.grad();
  return grads;
}

// The gathered GEMMs compute the same function as the grouped ones; on the CPU they run the same
// GEMMs, so the same bits. An expert no token reached gets no gradient either way.
TEST(OlmoeExperts, GatheredGemmIsTheSameFunction) {
  Generator gen(4);
  OlmoeExperts ex(4, 4, 3, f64_init(gen));
  const Tensor x = random_tensor({5, 4}, 2), w = random_tensor({5, 2}, 3);
  const Tensor idx = from_vector<int64_t>({3, 0, 1, 3, 3, 1, 0, 3, 3, 0}, {5, 2});  // no 2
  Variable xv(x, true), wv(w, true);
  auto run = [&](ExpertGemm gemm) {
    ex.set_gemm(gemm);
    xv.zero_grad();
    wv.zero_grad();
    std::map<std::string, Tensor> grads =
        grads_after(ex, [&] { return project(ex.forward(xv, wv, idx), 4); });
    grads["x"] = xv.grad();
    grads["w"] = wv.grad();
    grads["y"] = ex.forward(Variable(x), Variable(w), idx).data();
    return grads;
  };
  EXPECT_EQ(ex.gemm(), ExpertGemm::Grouped);
  const std::map<std::string, Tensor> grouped = run(ExpertGemm::Grouped);
  std::map<std::string, Tensor> gathered = run(ExpertGemm::Gathered);
  for (const auto& [name, g] : grouped) {
    ASSERT_EQ(g.defined(), gathered[name].defined()) << name;
    if (g.defined()) {
      EXPECT_ALL_CLOSE(gathered[name], g, 0, 0) << name;
    }
  }
  EXPECT_FALSE(gathered["2.up_proj.weight"].defined());
  // The experts' gradients are pieces of the one buffer their GEMM wrote, not copies of them.
  EXPECT_TRUE(gathered["0.gate_proj.weight"].shares_storage(gathered["3.up_proj.weight"]));
  EXPECT_GRADCHECK([&](const std::vector<Variable>& v) { return ex.forward(v[0], v[1], idx); },
                   {x, w});

  // Experts that train unlike (a selective adaptation's layer) run grouped: the same again.
  for (const std::string& n : expert_params({0, 2})) ex.set_requires_grad(n, false);
  gathered = run(ExpertGemm::Gathered);
  for (const std::string& n : expert_params({1, 3}))
    EXPECT_ALL_CLOSE(gathered[n], grouped.at(n), 0, 0) << n;
  for (const std::string& n : expert_params({0, 2})) EXPECT_FALSE(gathered[n].defined()) << n;
  // Every expert frozen: alike again, gathered, and only the input trains.
  for (const std::string& n : expert_params({1, 3})) ex.set_requires_grad(n, false);
  gathered = run(ExpertGemm::Gathered);
  EXPECT_ALL_CLOSE(gathered["x"], grouped.at("x"), 0, 0);
  EXPECT_ALL_CLOSE(gathered["w"], grouped.at("w"), 0, 0);

  EXPECT_EQ(testing::error_of([&] {
              ex.forward(Variable(zeros({2, 4}, DType::F64)), Variable(zeros({2, 2}, DType::F64)),
                         from_vector<int64_t>({1, 4, 0, 2}, {2, 2}));
            }),
            "group_by_index: index 4 out of range [0, 4) for OlmoeExperts' experts");
  EXPECT_EQ(ex.forward(Variable(zeros({0, 4})), Variable(zeros({0, 1})), zeros({0, 1}, DType::I64))
                .shape(),
            Shape({0, 4}));
  EXPECT_EQ(expert_gemm_from_string("gathered"), ExpertGemm::Gathered);
  EXPECT_EQ(expert_gemm_from_string("grouped"), ExpertGemm::Grouped);
  EXPECT_EQ(testing::error_of([] { expert_gemm_from_string("cublas"); }),
            "experts' GEMM 'cublas': expected grouped or gathered");
}

TEST(OlmoeExperts, ModuleToTheDeviceTheyAreOnMovesNothing) {
  Generator gen(3);
  OlmoeExperts ex(3, 4, 2, f64_init(gen));
  Variable w = ex.parameter("1.up_proj.weight");
  const std::vector<double> before = ex.up_stack().to_vector<double>();
  ex.to(Device::cpu());  // already there: nothing moves
  EXPECT_TRUE(ex.parameter("1.up_proj.weight").data().shares_storage(ex.up_stack()));
  EXPECT_EQ(ex.up_stack().to_vector<double>(), before);
  EXPECT_TRUE(w.data().shares_storage(ex.up_stack()));  // the same Variable
}

TEST(OlmoeSparseMoeBlock, GradcheckWithAnIdleExpert) {
  Generator gen(5);
  OlmoeSparseMoeBlock block(tiny_config(), f64_init(gen));
  // Expert 3 is masked out, so it receives no token.
  RouterHooks hooks;
  hooks.intervene = restrict_experts({0, 1, 2});
  Tensor x = random_tensor({1, 3, 4}, 6);
  MoeOutput out = block.forward(Variable(x), 0, &hooks);
  EXPECT_EQ(out.hidden.shape(), Shape({1, 3, 4}));
  EXPECT_EQ(out.router_logits.shape(), Shape({3, 4}));
  EXPECT_GRADCHECK(
      [&](const std::vector<Variable>& v) { return block.forward(v[0], 0, &hooks).hidden; }, {x});
  Variable xv(x);
  EXPECT_TRUE(testing::param_grads_ok(
      block, [&] { return project(block.forward(xv, 0, &hooks).hidden, 7); },
      [] {
        std::vector<std::string> names = expert_params({0, 1, 2}, "experts.");
        names.push_back("gate.weight");
        return names;
      }()));
  EXPECT_FALSE(block.parameter("experts.3.up_proj.weight").grad().defined());
}

TEST(OlmoeSparseMoeBlock, EqualsWeightedSumOfTopKExperts) {
  Generator gen(8);
  OlmoeConfig c = tiny_config();
  OlmoeSparseMoeBlock block(c, f64_init(gen));
  Tensor x = random_tensor({6, 4}, 9);
  Tensor y = block.forward(Variable(x)).hidden.data();
  Routing r = route(block.gate().forward(Variable(x)), 2, false);
  EXPECT_ALL_CLOSE(y, naive_experts(block.experts(), x, r.weights.data(), r.indices), 1e-12);
}

// Every expert is some token's first choice once and some token's second choice once, with
// cyclically symmetric logits, so counts and mean probabilities are uniform.
Variable balanced_logits() {
  std::vector<double> v(16, 0.0);
  for (int64_t n = 0; n < 4; ++n) {
    v[size_t(n * 4 + n)] = 2.0;
    v[size_t(n * 4 + (n + 1) % 4)] = 1.0;
  }
  return Variable(from_vector(v, {4, 4}));
}

TEST(MoeLosses, PerfectBalance) {
  Variable l = balanced_logits();
  EXPECT_NEAR(load_balancing_loss_hf({l, l}, 2).data().item(), 2.0, 1e-12);  // = k
  EXPECT_NEAR(load_balancing_loss_hf({l}, 1).data().item(), 1.0, 1e-12);
  EXPECT_NEAR(load_balancing_loss_megablocks({l, l}, 2).data().item(), 1.0, 1e-12);
}

TEST(MoeLosses, ImbalanceRaisesTheLoss) {
  Tensor skew = from_vector<double>({3, 2, 0, 0, 3, 2, 0, 0, 3, 2, 0, 0, 3, 2, 0, 0}, {4, 4});
  EXPECT_GT(load_balancing_loss_hf({Variable(skew)}, 2).data().item(), 2.0);
  EXPECT_GT(load_balancing_loss_megablocks({Variable(skew)}, 2).data().item(), 1.0);
}

TEST(MoeLosses, ValuesAndGradients) {
  Tensor a = random_tensor({3, 4}, 10), b = random_tensor({3, 4}, 11);
  // HF pools rows of all layers; megablocks averages per-layer losses: they differ in general.
  const double pooled = load_balancing_loss_hf({Variable(a), Variable(b)}, 2).data().item();
  const Tensor ab = concat({Variable(a), Variable(b)}, 0).data();
  EXPECT_NEAR(pooled, load_balancing_loss_hf({Variable(ab)}, 2).data().item(), 1e-12);

  double z = 0;
  for (const Tensor& t : {a, b})
    for (int64_t n = 0; n < 3; ++n) {
      double s = 0;
      for (int64_t e = 0; e < 4; ++e) s += std::exp(t.select(0, n).select(0, e).item());
      z += std::pow(std::log(s), 2) / 6.0;
    }
  EXPECT_NEAR(router_z_loss({Variable(a), Variable(b)}).data().item(), z, 1e-12);

  auto two = [](const std::vector<Variable>& v) { return std::vector<Variable>{v[0], v[1]}; };
  EXPECT_GRADCHECK(
      [&](const std::vector<Variable>& v) { return load_balancing_loss_hf(two(v), 2); }, {a, b});
  EXPECT_GRADCHECK(
      [&](const std::vector<Variable>& v) { return load_balancing_loss_megablocks(two(v), 2); },
      {a, b});
  EXPECT_GRADCHECK([&](const std::vector<Variable>& v) { return router_z_loss(two(v)); }, {a, b});
  testing::expect_error([] { router_z_loss({}); }, "no router logits");
  testing::expect_error([&] { load_balancing_loss_hf({Variable(a)}, 2, ones({4})); },
                        "token_mask [4] must have one entry per token (3)");
}

TEST(MoeLosses, HfMaskAveragesOverRealTokensOnly) {
  Tensor a = random_tensor({5, 4}, 12), b = random_tensor({5, 4}, 13);
  Tensor mask = from_vector<int64_t>({1, 0, 1, 1, 0}, {5});
  Tensor keep = from_vector<int64_t>({0, 2, 3}, {3});
  const double masked = load_balancing_loss_hf({Variable(a), Variable(b)}, 2, mask).data().item();
  const double kept =
      load_balancing_loss_hf(
          {index_select(Variable(a), 0, keep), index_select(Variable(b), 0, keep)}, 2)
          .data()
          .item();
  EXPECT_NEAR(masked, kept, 1e-12);
  EXPECT_NEAR(load_balancing_loss_hf({Variable(a)}, 2, ones({5})).data().item(),
              load_balancing_loss_hf({Variable(a)}, 2).data().item(), 1e-12);
  EXPECT_GRADCHECK(
      [&](const std::vector<Variable>& v) {
        return load_balancing_loss_hf({v[0], v[1]}, 2, mask);
      },
      {a, b});
}

}  // namespace
}  // namespace moegrad
