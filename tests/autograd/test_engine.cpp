#include <cmath>

#include "autograd/ops.h"  // all op headers together: also checks that their overloads coexist
#include "core/ops/unary.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

Variable scalar(double v, bool requires_grad = true) {
  return Variable(full({}, v, DType::F64), requires_grad);
}

TEST(Engine, GradientsFromTwoPathsAreSummed) {
  Variable x = scalar(3.0);
  Variable y = x * x + x;  // dy/dx = 2x + 1
  y.backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 7.0);
}

TEST(Engine, LeafGradientsAccumulateAcrossBackwardCalls) {
  Variable x = scalar(2.0);
  (x * x).backward();
  (x * x).backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 8.0);
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Engine, SecondBackwardThrowsUnlessGraphRetained) {
  Variable x = scalar(2.0);
  Variable y = exp(x);
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_NEAR(x.grad().item(), 2 * std::exp(2.0), 1e-12);
  try {
    y.backward();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }
}

TEST(Engine, BackwardFreesSavedTensors) {
  Tensor big = ones({1000}, DType::F64);
  Variable x(big.clone(), true);
  Variable y = mul(x, Variable(big));
  std::weak_ptr<Storage> saved = big.storage();
  big = Tensor();
  EXPECT_FALSE(saved.expired());  // held by mul's backward closure
  y.backward(ones({1000}, DType::F64));
  EXPECT_TRUE(saved.expired()) << "mul's saved input outlived backward";
}

TEST(Engine, NoGradGuardRecordsNothing) {
  Variable x = scalar(1.0);
  {
    NoGradGuard guard;
    Variable y = x * x;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
  }
  EXPECT_TRUE((x * x).requires_grad());
}

TEST(Engine, DetachCutsTheGraph) {
  Variable x = scalar(3.0);
  Variable y = x * x.detach();  // d/dx = x.detach() = 3
  y.backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 3.0);
}

TEST(Engine, HooksSeeAndReplaceGradients) {
  Variable x = scalar(2.0);
  Variable h = x * 3.0;
  double seen = 0;
  h.register_hook([&](const Tensor& g) {
    seen = g.item();
    return mul_scalar(g, 10.0);
  });
  x.register_hook([](const Tensor& g) { return add_scalar(g, 1.0); });
  (h * 2.0).backward();
  EXPECT_DOUBLE_EQ(seen, 2.0);
  EXPECT_DOUBLE_EQ(x.grad().item(), 2.0 * 10.0 * 3.0 + 1.0);
}

// The engine keeps its counts and sums on the graph's nodes: a backward that stops halfway
// (a hook throws) must let go of what it summed and leave nothing that a second pass over the
// retained graph would use.
TEST(Engine, ABackwardThatThrowsLeavesTheGraphAsItWas) {
  std::weak_ptr<Storage> passed;  // the gradient `tap` passes on, y's partial sum
  auto tap = [&](const Variable& a) {
    return make_result(a.data().clone(), "tap", {a},
                       [&](const Tensor& g, const std::vector<bool>&) {
                         Tensor out = g.clone();
                         passed = out.storage();
                         return std::vector<Tensor>{out};
                       });
  };
  Variable x = scalar(2.0);
  Variable y = x * x;  // reached twice: its rule waits for both
  Variable h = y * 3.0;
  Variable z = h * tap(y);  // z = 3 x^4, dz/dx = 12 x^3 = 96; tap's rule runs before h's
  bool fail = true;
  h.register_hook([&](const Tensor&) -> Tensor {
    if (fail) throw Error("hook failed");
    return Tensor();
  });
  EXPECT_EQ(testing::error_of([&] { z.backward(Tensor(), /*retain_graph=*/true); }), "hook failed");
  EXPECT_TRUE(passed.expired()) << "y's partial sum outlived the failed backward";
  EXPECT_FALSE(x.grad().defined());
  fail = false;
  z.backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 96.0);
}

TEST(Engine, FrozenLeafGetsNoGradient) {
  Variable w = scalar(2.0), frozen = scalar(5.0, false);
  (w * frozen).backward();
  EXPECT_DOUBLE_EQ(w.grad().item(), 5.0);
  EXPECT_FALSE(frozen.grad().defined());
}

// An op may leave a wanted leaf without a gradient after all (an expert no token reached), but
// not an input that is itself a result: its own rule would run on nothing.
TEST(Engine, OnlyALeafMayBeLeftWithoutGradient) {
  auto first_only = [](const Variable& a, const Variable& b) {
    return make_result(a.data().clone(), "first_only", {a, b},
                       [](const Tensor& g, const std::vector<bool>&) {
                         return std::vector<Tensor>{g, Tensor()};
                       });
  };
  Variable a = scalar(2.0), skipped = scalar(5.0);
  first_only(a, skipped).backward();
  EXPECT_DOUBLE_EQ(a.grad().item(), 1.0);
  EXPECT_FALSE(skipped.grad().defined());
  Variable b = scalar(3.0);
  EXPECT_EQ(testing::error_of([&] { first_only(a, b * 2.0).backward(); }),
            "first_only backward left the gradient of input 1 undefined");
}

// A rule that writes its leaves' gradients as pieces of one buffer (the experts' weight
// gradients, one GEMM for all) hands each piece to its leaf as it is; pieces that overlap, or
// a buffer something else still holds, are copied.
TEST(Engine, DisjointPiecesOfOneGradientBufferBecomeTheGradients) {
  Tensor kept;
  auto pieces = [&kept](const std::vector<Variable>& leaves, int64_t step, bool keep) {
    return make_result(
        zeros({}, DType::F64), "pieces", leaves,
        [n = leaves.size(), step, keep, &kept](const Tensor&, const std::vector<bool>&) {
          const Tensor buffer = full({int64_t(n) * step + 2}, 1.0, DType::F64);
          if (keep) kept = buffer;
          std::vector<Tensor> grads;
          for (size_t i = 0; i < n; ++i) grads.push_back(buffer.narrow(0, int64_t(i) * step, 2));
          return grads;
        });
  };
  auto leaves = [] {
    std::vector<Variable> v;
    for (int i = 0; i < 3; ++i) v.emplace_back(zeros({2}, DType::F64), true);
    return v;
  };
  std::vector<Variable> apart = leaves();
  pieces(apart, 3, false).backward();
  EXPECT_TRUE(apart[0].grad().shares_storage(apart[2].grad()));
  EXPECT_EQ(apart[1].grad().to_vector<double>(), (std::vector<double>{1.0, 1.0}));
  apart[1].grad().fill_(5.0);  // the pieces do not overlap
  EXPECT_EQ(apart[2].grad().to_vector<double>(), (std::vector<double>{1.0, 1.0}));
  pieces(apart, 3, false).backward();  // a second backward sums into them
  EXPECT_EQ(apart[1].grad().to_vector<double>(), (std::vector<double>{6.0, 6.0}));

  std::vector<Variable> overlapping = leaves(), held = leaves();
  pieces(overlapping, 1, false).backward();
  EXPECT_FALSE(overlapping[0].grad().shares_storage(overlapping[1].grad()));
  pieces(held, 3, true).backward();
  EXPECT_FALSE(held[0].grad().shares_storage(kept));
  EXPECT_EQ(held[2].grad().to_vector<double>(), (std::vector<double>{1.0, 1.0}));
}

TEST(Engine, NonScalarBackwardNeedsGradient) {
  Variable x(ones({3}, DType::F64), true);
  EXPECT_THROW((x * 2.0).backward(), Error);
}

TEST(Engine, ViewsRouteGradientsBack) {
  Tensor x = testing::random_tensor({4, 6}, 1);
  EXPECT_GRADCHECK([](const auto& v) { return mul(transpose(v[0], 0, 1), transpose(v[0], 0, 1)); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return narrow(v[0], 1, 2, 3); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return select(v[0], 0, 2); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return reshape(transpose(v[0], 0, 1), {3, 8}); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return permute(reshape(v[0], {2, 3, 4}), {2, 0, 1}); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return unsqueeze(squeeze(reshape(v[0], {1, 24}), 0), 1); }, {x});
  Tensor row = testing::random_tensor({1, 6}, 2);
  EXPECT_GRADCHECK([](const auto& v) { return expand(v[0], {3, 4, 6}); }, {row});
  EXPECT_GRADCHECK([](const auto& v) { return contiguous(transpose(v[0], 0, 1)); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return to(to(v[0], DType::F32), DType::F64); }, {x},
                   GradcheckOptions{1e-3, 1e-3, 1e-3});
}

}  // namespace
}  // namespace moegrad
