// A leaf's first gradient becomes its .grad without a copy only when nothing else can see that
// buffer: .grad is summed into in place later, so an alias would change whatever else holds it
// (another leaf's .grad, the caller's gradient, a tensor a hook or a node kept).
#include <utility>
#include <vector>

#include "autograd/ops.h"
#include "core/ops/binary.h"
#include "core/ops/unary.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

Tensor values(const std::vector<double>& v) { return from_vector(v, {int64_t(v.size())}); }

Variable leaf(const std::vector<double>& v) { return Variable(values(v), true); }

// A node with the one input x whose rule is `rule` (the output's value is x's).
Variable custom(const Variable& x, BackwardFn rule) {
  return make_result(x.data().clone(), "custom", {x}, std::move(rule));
}

int64_t bytes_of(const Tensor& t) { return t.numel() * int64_t(dtype_size(t.dtype())); }

TEST(LeafGrad, AFreshGradientIsTakenAsIsAndFiledAsGradients) {
  Variable x = leaf({1, 2, 3});
  const void* made = nullptr;
  Variable y = custom(x, [&](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = mul_scalar(g, 2.0);
    made = gx.data_ptr();
    return std::vector<Tensor>{gx};
  });
  y.backward(values({1, 1, 1}));
  EXPECT_EQ(x.grad().data_ptr(), made);  // no copy
  EXPECT_EQ(x.grad().storage()->category(), MemoryCategory::Gradients);
  EXPECT_ALL_CLOSE(x.grad(), values({2, 2, 2}));
}

TEST(LeafGrad, TheCallersGradientIsNeverTaken) {
  // The leaf is the root: its gradient is the caller's tensor.
  Variable x = leaf({1, 2});
  const Tensor g = values({3, 4});
  x.backward(g);
  x.backward(g);
  EXPECT_ALL_CLOSE(x.grad(), values({6, 8}));
  EXPECT_ALL_CLOSE(g, values({3, 4}));
  // Passed through by add to a leaf below the root.
  Variable a = leaf({1, 2}), c(values({0, 0}));
  add(a, c).backward(g);
  a.grad().fill_(9.0);
  EXPECT_ALL_CLOSE(g, values({3, 4}));
}

TEST(LeafGrad, OneTensorReturnedForBothSidesOfTheSameLeafIsCopied) {
  Variable x = leaf({1, 2});
  const Tensor g = values({1, 10});
  add(x, x).backward(g);  // add's rule returns g for both inputs
  EXPECT_ALL_CLOSE(x.grad(), values({2, 20}));
  EXPECT_ALL_CLOSE(g, values({1, 10}));
  mul_scalar(add(x, x), 1.0).backward(g);  // again, with a gradient made inside the graph
  EXPECT_ALL_CLOSE(x.grad(), values({4, 40}));
}

TEST(LeafGrad, TwoLeavesGivenTheSameTensorGetTwoBuffers) {
  Variable a = leaf({1, 2}), b = leaf({3, 4});
  // mul_scalar makes add's gradient a fresh tensor that only add's rule hands on, to both.
  mul_scalar(add(a, b), 2.0).backward(values({1, 1}));
  ASSERT_FALSE(a.grad().shares_storage(b.grad()));
  a.grad().fill_(7.0);
  EXPECT_ALL_CLOSE(b.grad(), values({2, 2}));
  b.grad().fill_(5.0);
  EXPECT_ALL_CLOSE(a.grad(), values({7, 7}));
}

TEST(LeafGrad, ProductOfALeafWithItselfSumsBothSides) {
  Variable x = leaf({2, -3});
  mul(x, x).backward(values({1, 1}));  // two fresh gradients: the first taken, the second added
  EXPECT_ALL_CLOSE(x.grad(), values({4, -6}));
  mul(x, x).backward(values({1, 1}));
  EXPECT_ALL_CLOSE(x.grad(), values({8, -12}));
}

TEST(LeafGrad, ALeafUsedInTwoNodesSumsIntoOneBuffer) {
  Variable x = leaf({1, 2});
  Variable h = x * 2.0;
  (h + x * 3.0 + mul(h, x)).backward(values({1, 1}));  // 2 + 3 + 4x
  EXPECT_ALL_CLOSE(x.grad(), values({9, 13}));
}

TEST(LeafGrad, ViewsOfALargerGradientAreCopiedToTheirOwnSize) {
  // concat's rule hands each input a narrow view of its gradient. Of a leaf and a result, the
  // leaf's view is copied: the rest of the buffer is the result's.
  Variable a = leaf({1, 2}), b = leaf({3, 4, 5});
  mul_scalar(concat({a, mul_scalar(b, 1.0)}), 2.0).backward(values({1, 2, 3, 4, 5}));
  EXPECT_ALL_CLOSE(a.grad(), values({2, 4}));
  EXPECT_ALL_CLOSE(b.grad(), values({6, 8, 10}));
  EXPECT_FALSE(a.grad().shares_storage(b.grad()));
  EXPECT_EQ(int64_t(a.grad().storage()->nbytes()), bytes_of(a.grad()));
  EXPECT_EQ(a.grad().offset(), 0);
  // Of two leaves, the views are the whole buffer between them, and nothing else holds it: each
  // leaf takes its piece as it is (what the experts' stacked weight gradients rely on).
  Variable c = leaf({1, 2}), d = leaf({3, 4, 5});
  mul_scalar(concat({c, d}), 2.0).backward(values({1, 2, 3, 4, 5}));
  EXPECT_ALL_CLOSE(c.grad(), values({2, 4}));
  EXPECT_ALL_CLOSE(d.grad(), values({6, 8, 10}));
  EXPECT_TRUE(c.grad().shares_storage(d.grad()));
  EXPECT_EQ(d.grad().offset(), 2);
  // The only view of its storage, at offset 0, but of half of it.
  Variable x = leaf({1, 2});
  custom(x, [](const Tensor& g, const std::vector<bool>&) {
    Tensor big = zeros({4}, DType::F64);
    big.narrow(0, 0, 2).copy_(g);
    return std::vector<Tensor>{big.narrow(0, 0, 2)};
  }).backward(values({3, 4}));
  EXPECT_ALL_CLOSE(x.grad(), values({3, 4}));
  EXPECT_EQ(int64_t(x.grad().storage()->nbytes()), bytes_of(x.grad()));
}

TEST(LeafGrad, NarrowAndSelectGradientsAreExact) {
  Variable x(testing::random_tensor({3, 4}, 1), true);
  (narrow(x, 1, 1, 2) * 2.0).backward(ones({3, 2}, DType::F64));
  (select(x, 0, 2) * 3.0).backward(ones({4}, DType::F64));
  Tensor expected = zeros({3, 4}, DType::F64);
  expected.narrow(1, 1, 2).fill_(2.0);
  add_(expected.select(0, 2), full({4}, 3.0, DType::F64));
  EXPECT_ALL_CLOSE(x.grad(), expected);
}

TEST(LeafGrad, AGradientAHookKeepsIsNotSummedInto) {
  Variable x = leaf({1, 2});
  std::vector<Tensor> seen;
  x.register_hook([&](const Tensor& g) {
    seen.push_back(g);
    return Tensor();
  });
  (x * 2.0).backward(values({1, 1}));
  (x * 2.0).backward(values({1, 1}));
  EXPECT_ALL_CLOSE(x.grad(), values({4, 4}));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_ALL_CLOSE(seen[0], values({2, 2}));
  // A hook on a node above the leaf, whose gradient add passes down unchanged.
  Variable a = leaf({1, 2});
  Variable h = add(a, Variable(values({0, 0})));
  Tensor kept;
  h.register_hook([&](const Tensor& g) {
    kept = g;
    return Tensor();
  });
  (h * 5.0).backward(values({1, 1}));
  a.grad().fill_(0.0);
  EXPECT_ALL_CLOSE(kept, values({5, 5}));
}

TEST(LeafGrad, ATensorARetainedGraphStillHoldsIsCopied) {
  // The rule returns a tensor its closure keeps: retained, the node will return it again.
  Variable x = leaf({1, 2});
  const Tensor k = values({1, 10});
  Variable y = custom(x, [k](const Tensor&, const std::vector<bool>&) {
    return std::vector<Tensor>{k};
  });
  y.backward(values({1, 1}), /*retain_graph=*/true);
  y.backward(values({1, 1}), /*retain_graph=*/true);
  y.backward(values({1, 1}), /*retain_graph=*/true);
  EXPECT_ALL_CLOSE(x.grad(), values({3, 30}));
  EXPECT_ALL_CLOSE(k, values({1, 10}));
  // A real op, retained and run twice.
  Variable z = leaf({1, 2});
  Variable w = exp(z);
  w.backward(values({1, 1}), true);
  w.backward(values({1, 1}));
  EXPECT_ALL_CLOSE(z.grad(), mul_scalar(exp(values({1, 2})), 2.0));
}

TEST(LeafGrad, NoTwoParametersShareAGradientBuffer) {
  // A small network where add hands one gradient to several parameters, a view passes
  // another on, and one parameter is used twice.
  Variable w1(testing::random_tensor({3, 3}, 1), true), w2(testing::random_tensor({3}, 2), true);
  Variable w3(testing::random_tensor({3}, 3), true), w4(testing::random_tensor({3, 3}, 4), true);
  Variable x(testing::random_tensor({2, 3}, 5));
  Variable h = add(matmul(x, w1), w2);  // w2 broadcast: its gradient is a reduction
  Variable s = add(reshape(w4, {9}), reshape(w1, {9})) * 3.0;
  Variable loss = sum(mul(h, h)) + sum(add(w2, w3) * 2.0) + sum(s);
  loss.backward();
  const std::vector<Variable> params{w1, w2, w3, w4};
  for (size_t i = 0; i < params.size(); ++i)
    for (size_t j = i + 1; j < params.size(); ++j)
      EXPECT_FALSE(params[i].grad().shares_storage(params[j].grad())) << i << " and " << j;
  // Each written in turn: the ones written before keep what was written, the rest their values.
  std::vector<Tensor> expected;
  for (const Variable& p : params) expected.push_back(p.grad().clone());
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].grad().fill_(100.0 + double(i));
    expected[i].fill_(100.0 + double(i));
    for (size_t j = 0; j < params.size(); ++j)
      EXPECT_ALL_CLOSE(params[j].grad(), expected[j]) << "after writing " << i << ", " << j;
  }
}

}  // namespace
}  // namespace moegrad
