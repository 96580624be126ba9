#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "autograd/ops.h"
#include "core/ops/binary.h"
#include "core/ops/reduce.h"
#include "core/random.h"
#include "moe/losses.h"
#include "moe/olmoe.h"
#include "tests/nn/param_gradcheck.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;
using testing::f64_init;

OlmoeConfig tiny_config() {
  OlmoeConfig c;
  c.vocab_size = 11;
  c.hidden_size = 8;
  c.intermediate_size = 3;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.num_experts = 4;
  c.num_experts_per_tok = 2;
  return c;
}

Tensor tokens() { return from_vector<int64_t>({1, 5, 2, 9, 0, 7, 7, 3, 10, 4}, {2, 5}); }

TEST(OlmoeForCausalLM, HfNamesInCheckpointOrder) {
  OlmoeConfig c = tiny_config();
  OlmoeForCausalLM m(c);
  std::vector<std::string> expected = {"model.embed_tokens.weight"};
  for (int i = 0; i < 2; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm"})
      expected.push_back(l + "self_attn." + p + ".weight");
    expected.push_back(l + "mlp.gate.weight");
    for (int e = 0; e < 4; ++e)
      for (const char* p : {"gate_proj", "up_proj", "down_proj"})
        expected.push_back(l + "mlp.experts." + std::to_string(e) + "." + p + ".weight");
    expected.push_back(l + "input_layernorm.weight");
    expected.push_back(l + "post_attention_layernorm.weight");
  }
  expected.push_back("model.norm.weight");
  expected.push_back("lm_head.weight");

  std::vector<std::string> names;
  std::map<std::string, Shape> shapes;
  for (auto& [n, t] : m.hf_named_tensors()) {
    names.push_back(n);
    shapes[n] = t.shape();
  }
  EXPECT_EQ(names, expected);
  EXPECT_EQ(shapes["model.embed_tokens.weight"], Shape({11, 8}));
  EXPECT_EQ(shapes["model.layers.1.self_attn.q_proj.weight"], Shape({8, 8}));
  EXPECT_EQ(shapes["model.layers.1.self_attn.k_proj.weight"], Shape({4, 8}));
  EXPECT_EQ(shapes["model.layers.1.self_attn.q_norm.weight"], Shape({8}));
  EXPECT_EQ(shapes["model.layers.1.self_attn.k_norm.weight"], Shape({4}));
  EXPECT_EQ(shapes["model.layers.0.mlp.gate.weight"], Shape({4, 8}));
  EXPECT_EQ(shapes["model.layers.0.mlp.experts.3.gate_proj.weight"], Shape({3, 8}));
  EXPECT_EQ(shapes["model.layers.0.mlp.experts.3.up_proj.weight"], Shape({3, 8}));
  EXPECT_EQ(shapes["model.layers.0.mlp.experts.3.down_proj.weight"], Shape({8, 3}));
  EXPECT_EQ(shapes["lm_head.weight"], Shape({11, 8}));

  // The parameters are the checkpoint's tensors, one per expert weight, so the optimizer and
  // freeze masks see experts one by one.
  std::vector<std::string> params;
  for (auto& [n, p] : m.named_parameters()) params.push_back(n);
  EXPECT_EQ(params, expected);
  const OlmoeExperts& experts = m.model().layer(1).mlp().experts();
  EXPECT_EQ(experts.gate_stack().shape(), Shape({4, 3, 8}));
  EXPECT_EQ(experts.down_stack().shape(), Shape({4, 8, 3}));

  // Loading through an HF name writes the parameter and the layer's stack it views.
  m.hf_tensor("model.layers.1.mlp.experts.2.down_proj.weight").fill_(3.0);
  const std::vector<float> threes(3, 3.0f);
  EXPECT_EQ(experts.down_stack().select(0, 2).select(0, 7).to_vector<float>(), threes);
  EXPECT_EQ(m.parameter("model.layers.1.mlp.experts.2.down_proj.weight")
                .data()
                .select(0, 7)
                .to_vector<float>(),
            threes);
  testing::expect_error([&] { m.hf_tensor("model.layers.2.mlp.gate.weight"); },
                        "no tensor named 'model.layers.2.mlp.gate.weight'");
}

TEST(OlmoeForCausalLM, ForwardShapesAndCausality) {
  Generator gen(1);
  OlmoeForCausalLM m(tiny_config(), f64_init(gen));
  Tensor ids = tokens();
  ModelOutput out = m.forward(ids);
  EXPECT_EQ(out.hidden.shape(), Shape({2, 5, 11}));
  ASSERT_EQ(out.router_logits.size(), 2u);
  EXPECT_EQ(out.router_logits[1].shape(), Shape({10, 4}));
  Tensor ids2 = ids.clone();
  ids2.select(1, 4).fill_(6);
  Tensor logits2 = m.forward(ids2).hidden.data();
  EXPECT_ALL_CLOSE(logits2.narrow(1, 0, 4), out.hidden.data().narrow(1, 0, 4), 1e-12);
  EXPECT_EQ(m.forward(ids).hidden.data().to_vector<double>(),
            out.hidden.data().to_vector<double>());  // deterministic
}

TEST(OlmoeForCausalLM, LossIsShiftedCrossEntropyPlusWeightedAux) {
  Generator gen(2);
  OlmoeConfig c = tiny_config();
  OlmoeForCausalLM m(c, f64_init(gen));
  Tensor ids = tokens();
  LossOutput plain = m.loss(ids, MoeLossWeights{});
  EXPECT_FALSE(plain.aux.defined());
  Tensor logits = plain.output.hidden.data();
  double ce = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 4; ++t) {
      Tensor row = logits.select(0, b).select(0, t);
      double z = 0;
      for (double v : row.contiguous().to_vector<double>()) z += std::exp(v);
      ce += std::log(z) - row.select(0, int64_t(ids.select(0, b).select(0, t + 1).item())).item();
    }
  EXPECT_NEAR(plain.ce.data().item(), ce / 8, 1e-10);
  EXPECT_NEAR(plain.loss.data().item(), ce / 8, 1e-10);

  LossOutput hf = m.loss(ids, MoeLossWeights::hf(c));
  const double aux = load_balancing_loss_hf(hf.output.router_logits, 2).data().item();
  EXPECT_NEAR(hf.loss.data().item(), ce / 8 + 0.01 * aux, 1e-10);

  LossOutput mb = m.loss(ids, MoeLossWeights::olmoe_training());
  const double expected =
      ce / 8 + 0.01 * load_balancing_loss_megablocks(mb.output.router_logits, 2).data().item() +
      0.001 * router_z_loss(mb.output.router_logits).data().item();
  EXPECT_NEAR(mb.loss.data().item(), expected, 1e-10);

  Tensor all_real = ones({2, 5}, DType::I64);
  EXPECT_NEAR(m.loss(ids, MoeLossWeights::hf(c), Tensor(), all_real).loss.data().item(),
              hf.loss.data().item(), 1e-12);
  Tensor padded = all_real.clone();
  padded.select(0, 1).narrow(0, 3, 2).fill_(0);
  EXPECT_NE(m.loss(ids, MoeLossWeights::hf(c), Tensor(), padded).loss.data().item(),
            hf.loss.data().item());
  testing::expect_error([&] { m.loss(ids, MoeLossWeights{}, Tensor(), ones({5})); },
                        "attention_mask [5] must match input_ids [2, 5]");

  // Ignored labels drop out of the mean.
  Tensor labels = ids.clone();
  labels.select(0, 1).fill_(-100);
  Tensor first = ids.narrow(0, 0, 1).contiguous();
  EXPECT_NEAR(m.loss(ids, MoeLossWeights{}, labels).ce.data().item(),
              m.loss(first, MoeLossWeights{}).ce.data().item(), 1e-10);
}

TEST(OlmoeForCausalLM, LossGradientsOfSelectedParameters) {
  OlmoeConfig c = tiny_config();
  c.num_hidden_layers = 1;
  Generator gen(3);
  OlmoeForCausalLM m(c, f64_init(gen));
  Tensor ids = from_vector<int64_t>({1, 5, 2, 9}, {1, 4});
  MoeLossWeights w = MoeLossWeights::hf(c);
  w.z_loss = 0.1;
  m.set_requires_grad(false);
  const std::vector<std::string> checked = {
      "model.layers.0.self_attn.k_norm.weight", "model.layers.0.mlp.gate.weight",
      "model.layers.0.mlp.experts.1.down_proj.weight",
      "model.layers.0.post_attention_layernorm.weight", "model.norm.weight"};
  for (const std::string& n : checked) m.set_requires_grad(n, true);
  EXPECT_TRUE(testing::param_grads_ok(
      m, [&] { return m.loss(ids, w).loss; }, checked));
  EXPECT_FALSE(m.parameter("lm_head.weight").grad().defined());  // frozen
}

TEST(RouterHooks, CaptureEveryLayer) {
  Generator gen(4);
  OlmoeForCausalLM m(tiny_config(), f64_init(gen));
  std::vector<RouterRecord> records;
  RouterHooks hooks;
  hooks.capture = [&](const RouterRecord& r) { records.push_back(r); };
  m.set_router_hooks(hooks);
  ModelOutput out = m.forward(tokens());
  ASSERT_EQ(records.size(), 2u);
  for (int64_t l = 0; l < 2; ++l) {
    const RouterRecord& r = records[size_t(l)];
    EXPECT_EQ(r.layer, l);
    EXPECT_ALL_CLOSE(r.logits, out.router_logits[size_t(l)].data(), 0.0);
    EXPECT_EQ(r.topk_indices.shape(), Shape({10, 2}));
    EXPECT_EQ(r.topk_weights.shape(), Shape({10, 2}));
    // The weights are the top-2 softmax probabilities of the logits (norm_topk_prob false).
    Tensor p = softmax(Variable(r.logits), -1).data();
    for (int64_t n = 0; n < 10; ++n)
      for (int64_t j = 0; j < 2; ++j)
        EXPECT_NEAR(r.topk_weights.select(0, n).select(0, j).item(),
                    p.select(0, n)
                        .select(0, int64_t(r.topk_indices.select(0, n).select(0, j).item()))
                        .item(),
                    1e-12);
  }
  m.set_router_hooks({});
  m.forward(tokens());
  EXPECT_EQ(records.size(), 2u);
}

TEST(RouterHooks, SteerToASubsetOfExperts) {
  Generator gen(5);
  OlmoeForCausalLM m(tiny_config(), f64_init(gen));
  std::vector<RouterRecord> records;
  RouterHooks hooks;
  hooks.capture = [&](const RouterRecord& r) { records.push_back(r); };
  hooks.intervene = restrict_experts({1, 3}, {1});
  m.set_router_hooks(hooks);
  Tensor logits = m.forward(tokens()).hidden.data();
  ASSERT_EQ(records.size(), 2u);
  for (int64_t e : records[1].topk_indices.to_vector<int64_t>()) EXPECT_TRUE(e == 1 || e == 3);
  const std::vector<int64_t> layer0 = records[0].topk_indices.to_vector<int64_t>();
  const std::set<int64_t> free_layer(layer0.begin(), layer0.end());
  EXPECT_GT(free_layer.size(), 2u);  // layer 0 untouched

  // A custom edit: boosting expert 0 makes it everyone's first choice, and changes the output.
  records.clear();
  hooks.intervene = [](int64_t, const Variable& l) {
    Tensor boost = from_vector<double>({100, 0, 0, 0}, {4});
    return l + Variable(boost);
  };
  m.set_router_hooks(hooks);
  Tensor steered = m.forward(tokens()).hidden.data();
  for (const RouterRecord& r : records)
    for (int64_t n = 0; n < 10; ++n)
      EXPECT_EQ(r.topk_indices.select(0, n).select(0, 0).item(), 0.0);
  EXPECT_FALSE(testing::all_close(steered, logits, 1e-6));
  testing::expect_error([] { restrict_experts({}); }, "allowed set is empty");
}


TEST(OlmoeForCausalLM, F32BackwardReachesEveryParameter) {
  Generator gen(6);
  InitOptions init;
  init.gen = &gen;
  OlmoeForCausalLM m(tiny_config(), init);
  LossOutput out = m.loss(tokens(), MoeLossWeights::olmoe_training());
  EXPECT_EQ(out.loss.dtype(), DType::F32);
  EXPECT_NEAR(out.ce.data().item(), std::log(11.0), 0.1);  // small init: near uniform
  out.loss.backward();
  for (auto& [name, p] : m.named_parameters()) EXPECT_TRUE(p.grad().defined()) << name;
}

TEST(OlmoeForCausalLM, Bf16ModelMatchesTheF32ModelOnItsValues) {
  // Mixed precision: every parameter rounded to bf16 (the expert stacks stay stacks), the
  // router and the losses in f32, the same function as the f32 model on the rounded values.
  OlmoeConfig c = tiny_config();
  c.vocab_size = 64;
  c.hidden_size = 32;
  c.intermediate_size = 16;
  // Every token takes every expert: a top-k near-tie that bf16 rounding flips would change
  // which experts get gradients, a discrete difference this test is not about.
  c.num_experts = 4;
  c.num_experts_per_tok = 4;
  Generator gen_a(7), gen_b(7);
  InitOptions init_a, init_b;
  init_a.gen = &gen_a;
  init_b.gen = &gen_b;
  init_a.std = init_b.std = 0.2;  // weights large enough that routing and logits vary
  OlmoeForCausalLM bf(c, init_a), f32(c, init_b);
  bf.to(DType::BF16);
  const auto pb = bf.named_parameters(), pf = f32.named_parameters();
  for (size_t i = 0; i < pb.size(); ++i) {
    ASSERT_EQ(pb[i].second.dtype(), DType::BF16) << pb[i].first;
    pf[i].second.data().copy_(pb[i].second.data());  // f32 holding the rounded values
  }
  const OlmoeExperts& experts = bf.model().layer(1).mlp().experts();
  EXPECT_TRUE(experts.expert_weight(3, "up_proj").shares_storage(experts.expert_weight(0, "up_proj")));

  Generator gen(8);
  const Tensor ids = randint(0, 64, {2, 12}, gen, DType::I64);
  LossOutput a = bf.loss(ids, MoeLossWeights::olmoe_training());
  LossOutput b = f32.loss(ids, MoeLossWeights::olmoe_training());
  EXPECT_EQ(a.loss.dtype(), DType::F32);
  EXPECT_EQ(a.output.router_logits[0].dtype(), DType::F32);
  EXPECT_EQ(a.output.hidden.dtype(), DType::BF16);
  EXPECT_NEAR(a.ce.data().item(), b.ce.data().item(), 1e-2 * b.ce.data().item());
  EXPECT_NEAR(a.z.data().item(), b.z.data().item(), 2e-2 * b.z.data().item());
  a.loss.backward();
  b.loss.backward();
  for (size_t i = 0; i < pb.size(); ++i) {
    const Tensor gb = pb[i].second.grad(), gf = pf[i].second.grad();
    ASSERT_TRUE(gb.defined()) << pb[i].first;
    EXPECT_EQ(gb.dtype(), DType::BF16) << pb[i].first;
    // Relative to the gradient's scale: bf16 activations perturb every element a little.
    const double scale = std::sqrt(sum(mul(gf, gf)).item() / double(gf.numel())) + 1e-12;
    const Tensor diff = sub(gb.to(DType::F32), gf);
    const double rms = std::sqrt(sum(mul(diff, diff)).item() / double(gf.numel()));
    EXPECT_LT(rms, 0.05 * scale) << pb[i].first;  // 2.3% at worst when written
  }
}

}  // namespace
}  // namespace moegrad
