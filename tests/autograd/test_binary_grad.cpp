#include <cmath>

#include "autograd/ops/binary.h"
#include "autograd/ops/views.h"
#include "core/ops/binary.h"
#include "core/ops/unary.h"
#include "tests/autograd/bf16_grads.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;
using Fn = std::function<Variable(const std::vector<Variable>&)>;

TEST(BinaryGrad, BroadcastingAddSubMulDiv) {
  Tensor a = random_tensor({3, 4}, 1), b = random_tensor({4}, 2);
  EXPECT_GRADCHECK([](const auto& v) { return add(v[0], v[1]); }, {a, b});
  EXPECT_GRADCHECK([](const auto& v) { return sub(v[0], v[1]); }, {a, b});
  EXPECT_GRADCHECK([](const auto& v) { return mul(v[0], v[1]); }, {a, b});
  Tensor c = random_tensor({3, 1}, 3);
  EXPECT_GRADCHECK([](const auto& v) { return div(v[0], v[1]); }, {a, c});
}

TEST(BinaryGrad, NonContiguousInput) {
  Tensor a = random_tensor({4, 3}, 4).t();  // [3, 4], transposed strides
  Tensor b = random_tensor({3, 4}, 5);
  EXPECT_GRADCHECK([](const auto& v) { return mul(v[0], v[1]); }, {a, b});
}

TEST(BinaryGrad, SameLeafAlongTwoPaths) {
  Tensor a = random_tensor({5}, 6);
  EXPECT_GRADCHECK([](const auto& v) { return mul(add(v[0], v[0]), v[0]); }, {a});
}

}  // namespace
}  // namespace moegrad

namespace moegrad {
namespace {

TEST(BinaryGrad, PowMaximumMinimum) {
  std::vector<double> v = testing::random_tensor({3, 4}, 11).to_vector<double>();
  for (double& x : v) x = std::fabs(x) + 0.5;  // pow's base must be positive for d/dy = x^y log x
  Tensor x = from_vector<double>(v, {3, 4});
  Tensor y = testing::random_tensor({4}, 12);
  EXPECT_GRADCHECK([](const auto& in) { return pow(in[0], in[1]); }, {x, y});
  // Distinct values: the max/min gradient is defined away from ties.
  Tensor a = testing::random_tensor({3, 4}, 13), b = testing::random_tensor({3, 1}, 14);
  EXPECT_GRADCHECK([](const auto& in) { return maximum(in[0], in[1]); }, {a, b});
  EXPECT_GRADCHECK([](const auto& in) { return minimum(in[0], in[1]); }, {a, b});
}

TEST(BinaryGrad, TiesSplitTheGradientEvenly) {
  Variable a(full({2}, 1.0, DType::F64), true), b(full({2}, 1.0, DType::F64), true);
  maximum(a, b).backward(ones({2}, DType::F64));
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{0.5, 0.5}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{0.5, 0.5}));
}

}  // namespace
}  // namespace moegrad

namespace moegrad {
namespace {

TEST(BinaryGrad, Bf16GraphMatchesF32) {
  using testing::expect_bf16_grads_close;
  Tensor a = testing::random_tensor({3, 5}, 21, DType::BF16);
  Tensor row = testing::random_tensor({5}, 22, DType::BF16);             // broadcast
  Tensor at = testing::random_tensor({5, 3}, 23, DType::BF16).t();       // non-contiguous
  Tensor col = add_scalar(abs(testing::random_tensor({3, 1}, 24, DType::BF16)), 0.5);
  expect_bf16_grads_close([](const auto& v) { return add(v[0], v[1]); }, {a, row});
  expect_bf16_grads_close([](const auto& v) { return sub(v[0], v[1]); }, {row, a});
  expect_bf16_grads_close([](const auto& v) { return mul(v[0], v[1]); }, {at, row});
  expect_bf16_grads_close([](const auto& v) { return div(v[0], v[1]); }, {a, col});
  expect_bf16_grads_close([](const auto& v) { return maximum(v[0], v[1]); }, {a, at});
  expect_bf16_grads_close([](const auto& v) { return mul(add(v[0], v[0]), v[0]); }, {at});
}

// mul keeps an operand only for the other's gradient: an activation times a frozen scale
// keeps the scale, not the activation.
TEST(BinaryGrad, MulKeepsOnlyWhatAGradientReads) {
  const Tensor xt = random_tensor({4, 3}, 30), st = random_tensor({4, 1}, 31),
               g = random_tensor({4, 3}, 32);
  Variable x(xt, true);
  Variable y = mul(x, Variable(st));
  EXPECT_EQ(xt.storage().use_count(), 2);  // the caller's handle and x's
  EXPECT_EQ(st.storage().use_count(), 2);  // + the node's
  y.backward(g);
  EXPECT_ALL_CLOSE(x.grad(), mul(g, st));
}

}  // namespace
}  // namespace moegrad
