#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/rmsnorm.h"
#include "tests/nn/param_gradcheck.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;
using testing::f64_init;
using testing::project;

OlmoeConfig tiny_attention_config() {
  OlmoeConfig c;
  c.hidden_size = 8;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.vocab_size = 11;
  c.num_experts = 4;
  c.num_experts_per_tok = 2;
  return c;
}

TEST(Module, NamesLookupAndFreeze) {
  Generator gen(1);
  OlmoeAttention attn(tiny_attention_config(), f64_init(gen));
  std::vector<std::string> names;
  for (auto& [n, p] : attn.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"q_proj.weight", "k_proj.weight", "v_proj.weight",
                                             "o_proj.weight", "q_norm.weight", "k_norm.weight"}));
  EXPECT_EQ(attn.parameter("k_proj.weight").shape(), Shape({4, 8}));
  EXPECT_EQ(attn.parameter("k_norm.weight").shape(), Shape({4}));
  EXPECT_EQ(attn.num_parameters(), 64 + 32 + 32 + 64 + 8 + 4);
  testing::expect_error([&] { attn.parameter("q_proj.bias"); }, "no parameter named 'q_proj.bias'");

  attn.set_requires_grad("q_proj.weight", false);
  Variable x(random_tensor({1, 3, 8}, 2));
  sum(attn.forward(x)).backward();
  EXPECT_FALSE(attn.parameter("q_proj.weight").grad().defined());
  EXPECT_TRUE(attn.parameter("k_proj.weight").grad().defined());
}

TEST(Linear, ForwardIsXWTransposed) {
  Generator gen(3);
  Linear lin(3, 2, f64_init(gen));
  Tensor x = random_tensor({4, 3}, 4);
  Tensor w = lin.weight().data();
  Tensor y = lin.forward(Variable(x)).data();
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t o = 0; o < 2; ++o) {
      double ref = 0;
      for (int64_t j = 0; j < 3; ++j)
        ref += x.select(0, i).select(0, j).item() * w.select(0, o).select(0, j).item();
      EXPECT_NEAR(y.select(0, i).select(0, o).item(), ref, 1e-12);
    }
}

TEST(Linear, Gradcheck) {
  Generator gen(5);
  Linear lin(3, 4, f64_init(gen));
  EXPECT_GRADCHECK([&](const std::vector<Variable>& v) { return lin.forward(v[0]); },
                   {random_tensor({2, 3, 3}, 6)});
  Variable x(random_tensor({5, 3}, 7));
  EXPECT_TRUE(testing::param_grads_ok(lin, [&] { return project(lin.forward(x), 8); }, {"weight"}));
}

TEST(Linear, AdoptsAViewAsItsWeight) {
  Tensor stack = random_tensor({2, 4, 3}, 9);
  Linear lin(stack.select(0, 1));
  EXPECT_TRUE(lin.weight().data().shares_storage(stack));
  EXPECT_EQ(lin.weight().shape(), Shape({4, 3}));
  EXPECT_TRUE(lin.weight().requires_grad());
  lin.weight().data().fill_(2.0);
  EXPECT_EQ(stack.select(0, 1).to_vector<double>(), std::vector<double>(12, 2.0));
  EXPECT_EQ(stack.select(0, 0).to_vector<double>(),
            random_tensor({2, 4, 3}, 9).select(0, 0).to_vector<double>());
  // The gradient is the weight's own [4, 3], not the stack's.
  Variable x(random_tensor({5, 3}, 10));
  sum(lin.forward(x)).backward();
  EXPECT_EQ(lin.weight().grad().shape(), Shape({4, 3}));
  testing::expect_error([&] { Linear bad(stack); }, "weight must be [out, in], got [2, 4, 3]");
}

TEST(Module, ToTheDeviceItIsOnMovesNothing) {
  Generator gen(11);
  Linear lin(3, 2, f64_init(gen));
  Variable w = lin.weight();
  const std::vector<double> values = w.data().to_vector<double>();
  lin.to(Device::cpu());  // already there: nothing moves
  EXPECT_EQ(lin.weight().data().to_vector<double>(), values);
  EXPECT_EQ(w.data().to_vector<double>(), values);
}

TEST(Embedding, LooksUpRowsAndGetsGradient) {
  Generator gen(9);
  Embedding emb(6, 3, f64_init(gen));
  Tensor ids = from_vector<int64_t>({5, 0, 5}, {1, 3});
  Tensor y = emb.forward(ids).data();
  EXPECT_EQ(y.shape(), Shape({1, 3, 3}));
  EXPECT_ALL_CLOSE(y.select(0, 0).select(0, 1), emb.weight().data().select(0, 0));
  EXPECT_TRUE(
      testing::param_grads_ok(emb, [&] { return project(emb.forward(ids), 10); }, {"weight"}));
}

TEST(RMSNorm, ForwardAndGradcheck) {
  RMSNorm norm(4, 1e-5, DType::F64);
  norm.weight().data().copy_(random_tensor({4}, 11));
  Tensor x = random_tensor({3, 4}, 12);
  Tensor y = norm.forward(Variable(x)).data();
  for (int64_t i = 0; i < 3; ++i) {
    double ms = 0;
    for (int64_t j = 0; j < 4; ++j) ms += std::pow(x.select(0, i).select(0, j).item(), 2) / 4;
    for (int64_t j = 0; j < 4; ++j)
      EXPECT_NEAR(y.select(0, i).select(0, j).item(),
                  x.select(0, i).select(0, j).item() / std::sqrt(ms + 1e-5) *
                      norm.weight().data().select(0, j).item(),
                  1e-12);
  }
  EXPECT_GRADCHECK([&](const std::vector<Variable>& v) { return norm.forward(v[0]); },
                   {random_tensor({2, 4}, 13)});
  Variable xv(x);
  EXPECT_TRUE(
      testing::param_grads_ok(norm, [&] { return project(norm.forward(xv), 14); }, {"weight"}));
}

TEST(OlmoeAttention, ShapesAndCausality) {
  Generator gen(15);
  OlmoeAttention attn(tiny_attention_config(), f64_init(gen));
  Tensor x = random_tensor({2, 5, 8}, 16);
  Tensor y = attn.forward(Variable(x)).data();
  EXPECT_EQ(y.shape(), Shape({2, 5, 8}));
  // Changing the last token leaves the earlier outputs alone.
  Tensor x2 = x.clone();
  x2.narrow(1, 4, 1).copy_(random_tensor({2, 1, 8}, 17));
  Tensor y2 = attn.forward(Variable(x2)).data();
  EXPECT_ALL_CLOSE(y2.narrow(1, 0, 4), y.narrow(1, 0, 4), 1e-12);
}

// A naive reference of the whole module for one sequence, written with Tensor loops: QK-norm
// over the full width before the head split, RoPE half layout, causal softmax, GQA.
TEST(OlmoeAttention, MatchesNaiveReference) {
  OlmoeConfig c = tiny_attention_config();
  Generator gen(18);
  OlmoeAttention attn(c, f64_init(gen));
  attn.q_norm().weight().data().copy_(random_tensor({8}, 19));
  attn.k_norm().weight().data().copy_(random_tensor({4}, 20));
  const int64_t t = 3, d = 4;
  Tensor x = random_tensor({1, t, 8}, 21);
  Tensor y = attn.forward(Variable(x)).data();

  auto lin = [](const std::vector<double>& v, const Tensor& w) {
    std::vector<double> out(size_t(w.size(0)), 0.0);
    for (int64_t o = 0; o < w.size(0); ++o)
      for (int64_t i = 0; i < w.size(1); ++i)
        out[size_t(o)] += w.select(0, o).select(0, i).item() * v[size_t(i)];
    return out;
  };
  auto norm = [](std::vector<double> v, const Tensor& w) {
    double ms = 0;
    for (double a : v) ms += a * a / double(v.size());
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = v[i] / std::sqrt(ms + 1e-5) * w.select(0, int64_t(i)).item();
    return v;
  };
  auto rope = [&](std::vector<double> v, int64_t head, int64_t pos) {
    std::vector<double> h(v.begin() + head * d, v.begin() + (head + 1) * d),
        out(static_cast<size_t>(d));
    for (int64_t i = 0; i < d; ++i) {
      const double freq = std::pow(c.rope_theta, -2.0 * double(i % (d / 2)) / double(d));
      const double rot = i < d / 2 ? -h[size_t(i + d / 2)] : h[size_t(i - d / 2)];
      out[size_t(i)] = h[size_t(i)] * std::cos(pos * freq) + rot * std::sin(pos * freq);
    }
    return out;
  };
  std::vector<std::vector<double>> q(t), k(t), v(t);
  for (int64_t s = 0; s < t; ++s) {
    std::vector<double> xs = x.select(0, 0).select(0, s).contiguous().to_vector<double>();
    q[size_t(s)] = norm(lin(xs, attn.q_proj().weight().data()), attn.q_norm().weight().data());
    k[size_t(s)] = norm(lin(xs, attn.k_proj().weight().data()), attn.k_norm().weight().data());
    v[size_t(s)] = lin(xs, attn.v_proj().weight().data());
  }
  for (int64_t s = 0; s < t; ++s) {
    std::vector<double> ctx(8, 0.0);
    for (int64_t head = 0; head < 2; ++head) {
      std::vector<double> qs = rope(q[size_t(s)], head, s), scores;
      double mx = -1e300;
      for (int64_t u = 0; u <= s; ++u) {
        std::vector<double> ku = rope(k[size_t(u)], 0, u);  // one kv head shared
        double dot = 0;
        for (int64_t i = 0; i < d; ++i) dot += qs[size_t(i)] * ku[size_t(i)];
        scores.push_back(dot / std::sqrt(double(d)));
        mx = std::max(mx, scores.back());
      }
      double z = 0;
      for (double& sc : scores) z += (sc = std::exp(sc - mx));
      for (int64_t u = 0; u <= s; ++u)
        for (int64_t i = 0; i < d; ++i)
          ctx[size_t(head * d + i)] += scores[size_t(u)] / z * v[size_t(u)][size_t(i)];
    }
    std::vector<double> out = lin(ctx, attn.o_proj().weight().data());
    EXPECT_ALL_CLOSE(y.select(0, 0).select(0, s), from_vector(out, {8}), 1e-10);
  }
}

TEST(OlmoeAttention, ClipQkvClamps) {
  OlmoeConfig c = tiny_attention_config();
  Generator g1(22), g2(22);
  OlmoeAttention plain(c, f64_init(g1));
  c.clip_qkv = 1e-3;
  OlmoeAttention clipped(c, f64_init(g2));
  Tensor x = random_tensor({1, 3, 8}, 23);
  Tensor y = clipped.forward(Variable(x)).data();
  EXPECT_FALSE(testing::all_close(y, plain.forward(Variable(x)).data(), 1e-6));
  // v in [-c, c] bounds every attention output row by |o_proj| * c.
  double bound = 0;
  for (double w : clipped.o_proj().weight().data().contiguous().to_vector<double>())
    bound += std::abs(w);
  for (double a : y.contiguous().to_vector<double>()) EXPECT_LE(std::abs(a), bound * 1e-3);
}

TEST(OlmoeAttention, Gradcheck) {
  Generator gen(24);
  OlmoeAttention attn(tiny_attention_config(), f64_init(gen));
  attn.q_norm().weight().data().copy_(random_tensor({8}, 25));
  EXPECT_GRADCHECK([&](const std::vector<Variable>& v) { return attn.forward(v[0]); },
                   {random_tensor({1, 3, 8}, 26)});
  Variable x(random_tensor({2, 3, 8}, 27));
  EXPECT_TRUE(testing::param_grads_ok(attn, [&] { return project(attn.forward(x), 28); },
                                      {"q_proj.weight", "k_proj.weight", "v_proj.weight",
                                       "o_proj.weight", "q_norm.weight", "k_norm.weight"}));
}

}  // namespace
}  // namespace moegrad
