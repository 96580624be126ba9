#include "autograd/ops.h"
#include "tests/autograd/bf16_grads.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(SwigluGrad, BothInputs) {
  Tensor g = random_tensor({3, 5}, 1), u = random_tensor({3, 5}, 2);
  EXPECT_GRADCHECK([](const auto& v) { return swiglu(v[0], v[1]); }, {g, u});
}

TEST(SwigluGrad, OneInputWithoutGrad) {
  Tensor g = random_tensor({4, 3}, 3), u = random_tensor({4, 3}, 4);
  // A frozen side: its gradient is never asked for, the other's still checks.
  EXPECT_GRADCHECK([u](const auto& v) { return swiglu(v[0], Variable(u)); }, {g});
  EXPECT_GRADCHECK([g](const auto& v) { return swiglu(Variable(g), v[0]); }, {u});
  Variable gv(g, true), uv(u, false);
  Variable y = swiglu(gv, uv);
  y.backward(ones_like(g));
  EXPECT_TRUE(gv.grad().defined());
  EXPECT_FALSE(uv.grad().defined());
}

TEST(SwigluGrad, TransposedInput) {
  Tensor g = random_tensor({5, 3}, 5).t(), u = random_tensor({3, 5}, 6);
  EXPECT_GRADCHECK([](const auto& v) { return swiglu(v[0], v[1]); }, {g, u});
}

TEST(SwigluGrad, SameVariableAsGateAndUp) {
  // d/dx (x silu(x)) sums both paths.
  Tensor x = random_tensor({2, 7}, 7);
  EXPECT_GRADCHECK([](const auto& v) { return swiglu(v[0], v[0]); }, {x});
}

TEST(SwigluGrad, InsideAGraph) {
  Tensor x = random_tensor({3, 4}, 8), wg = random_tensor({4, 5}, 9), wu = random_tensor({4, 5}, 10);
  EXPECT_GRADCHECK([](const auto& v) { return swiglu(matmul(v[0], v[1]), matmul(v[0], v[2])); },
                   {x, wg, wu});
}

TEST(SwigluGrad, Bf16GraphMatchesF32) {
  Tensor g = random_tensor({7, 3}, 11, DType::BF16).t();  // [3, 7], non-contiguous
  Tensor u = random_tensor({3, 7}, 12, DType::BF16);
  testing::expect_bf16_grads_close([](const auto& v) { return swiglu(v[0], v[1]); }, {g, u});
}

}  // namespace
}  // namespace moegrad
