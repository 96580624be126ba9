#include "autograd/ops/binary.h"
#include "autograd/ops/unary.h"
#include "core/ops/compare.h"
#include "core/ops/unary.h"
#include "tests/autograd/bf16_grads.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(UnaryGrad, MathFunctions) {
  Tensor x = random_tensor({3, 4}, 1);
  Tensor pos = add_scalar(abs(x), 0.5);  // log, sqrt, rsqrt need x > 0
  EXPECT_GRADCHECK([](const auto& v) { return neg(v[0]); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return exp(v[0]); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return log(v[0]); }, {pos});
  EXPECT_GRADCHECK([](const auto& v) { return sqrt(v[0]); }, {pos});
  EXPECT_GRADCHECK([](const auto& v) { return rsqrt(v[0]); }, {pos});
  EXPECT_GRADCHECK([](const auto& v) { return abs(v[0]); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return square(v[0]); }, {x});
}

TEST(UnaryGrad, Activations) {
  Tensor x = random_tensor({4, 5}, 2);
  EXPECT_GRADCHECK([](const auto& v) { return tanh(v[0]); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return sigmoid(v[0]); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return silu(v[0]); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return relu(v[0]); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return gelu(v[0]); }, {x});
}

TEST(UnaryGrad, ScalarOpsAndClamp) {
  Tensor x = random_tensor({6}, 3);
  Tensor pos = add_scalar(abs(x), 0.5);
  EXPECT_GRADCHECK([](const auto& v) { return add_scalar(v[0], 2.5); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return mul_scalar(v[0], -3.0); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return rsub_scalar(v[0], 1.0); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return pow_scalar(v[0], 1.7); }, {pos});
  EXPECT_GRADCHECK([](const auto& v) { return clamp(v[0], -0.5, 0.5); }, {x});
}

TEST(UnaryGrad, NonContiguousInput) {
  Tensor x = random_tensor({5, 3}, 4).t();
  EXPECT_GRADCHECK([](const auto& v) { return silu(v[0]); }, {x});
  EXPECT_GRADCHECK([](const auto& v) { return exp(v[0]); }, {x});
}

TEST(UnaryGrad, WhereRoutesGradientByCondition) {
  Tensor a = random_tensor({3, 4}, 5), b = random_tensor({4}, 6);
  Tensor cond = gt(random_tensor({3, 4}, 7), zeros({}, DType::F64));
  EXPECT_GRADCHECK([cond](const auto& v) { return where(cond, v[0], v[1]); }, {a, b});
}

TEST(UnaryGrad, ChainOfOps) {
  Tensor x = random_tensor({2, 3}, 8), w = random_tensor({3}, 9);
  EXPECT_GRADCHECK([](const auto& v) { return silu(mul(v[0], v[1])) * 2.0 + v[0]; }, {x, w});
}

}  // namespace
}  // namespace moegrad

namespace moegrad {
namespace {

TEST(UnaryGrad, Bf16GraphMatchesF32) {
  using testing::expect_bf16_grads_close;
  Tensor x = testing::random_tensor({7, 3}, 31, DType::BF16).t();  // [3, 7], non-contiguous
  Tensor pos = add_scalar(abs(x), 0.5);
  expect_bf16_grads_close([](const auto& v) { return silu(v[0]); }, {x});
  expect_bf16_grads_close([](const auto& v) { return gelu(v[0]); }, {x});
  expect_bf16_grads_close([](const auto& v) { return sigmoid(v[0]); }, {x});
  expect_bf16_grads_close([](const auto& v) { return exp(v[0]); }, {x});
  expect_bf16_grads_close([](const auto& v) { return rsqrt(v[0]); }, {pos});
  expect_bf16_grads_close([](const auto& v) { return mul_scalar(v[0], 0.3); }, {x});
  expect_bf16_grads_close([](const auto& v) { return clamp(v[0], -0.5, 0.5); }, {x});
  Tensor cond = gt(x, zeros({}, DType::BF16));
  expect_bf16_grads_close([&](const auto& v) { return where(cond, v[0], v[1]); }, {x, pos});
}

}  // namespace
}  // namespace moegrad
