#include "autograd/ops/binary.h"
#include "autograd/ops/reduce.h"
#include "autograd/ops/views.h"
#include "tests/autograd/bf16_grads.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

// Small inputs of one logical shape [3, 4, 5] in three layouts.
std::vector<Tensor> inputs() {
  return {random_tensor({3, 4, 5}, 1), random_tensor({5, 4, 3}, 2).permute({2, 1, 0}),
          random_tensor({3, 4, 7}, 3).narrow(2, 1, 5)};
}

TEST(ReduceGrad, SumAndMean) {
  for (const Tensor& x : inputs()) {
    for (std::vector<int64_t> dims : {std::vector<int64_t>{}, {0}, {1}, {-1}, {0, 2}}) {
      for (bool keep : {false, true}) {
        EXPECT_GRADCHECK([&](const auto& v) { return sum(v[0], dims, keep); }, {x});
        EXPECT_GRADCHECK([&](const auto& v) { return mean(v[0], dims, keep); }, {x});
      }
    }
  }
}

TEST(ReduceGrad, AmaxMaxAndLogsumexp) {
  for (const Tensor& x : inputs()) {
    for (std::vector<int64_t> dims : {std::vector<int64_t>{}, {0}, {1}, {2}, {1, 2}}) {
      EXPECT_GRADCHECK([&](const auto& v) { return amax(v[0], dims); }, {x});
      EXPECT_GRADCHECK([&](const auto& v) { return logsumexp(v[0], dims, true); }, {x});
    }
    for (int64_t d : {0, 1, -1}) {
      EXPECT_GRADCHECK([&](const auto& v) { return max(v[0], d).first; }, {x});
      EXPECT_GRADCHECK([&](const auto& v) { return max(v[0], d, true).first; }, {x});
    }
  }
}

TEST(ReduceGrad, InputUsedTwice) {
  Tensor x = random_tensor({4, 3}, 4);
  EXPECT_GRADCHECK(
      [](const auto& v) { return mul(sum(v[0], {0}, true), logsumexp(v[0], {0}, true)); }, {x});
}

TEST(ReduceGrad, AmaxSplitsTiesEvenlyMaxPicksTheIndex) {
  Variable x(from_vector<double>({1, 3, 3, 2, 2, 2}, {2, 3}), true);
  sum(amax(x, {1})).backward();
  EXPECT_EQ(x.grad().to_vector<double>(),
            (std::vector<double>{0, 0.5, 0.5, 1.0 / 3, 1.0 / 3, 1.0 / 3}));
  x.zero_grad();
  auto [values, indices] = max(x, 1);
  EXPECT_EQ(indices.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  sum(values).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 1, 0, 1, 0, 0}));
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
}

}  // namespace
}  // namespace moegrad

namespace moegrad {
namespace {

TEST(ReduceGrad, Bf16GraphMatchesF32) {
  using testing::expect_bf16_grads_close;
  Tensor x = testing::random_tensor({5, 4, 3}, 41, DType::BF16).permute({2, 1, 0});  // [3, 4, 5]
  expect_bf16_grads_close([](const auto& v) { return sum(v[0], {1}); }, {x});
  expect_bf16_grads_close([](const auto& v) { return sum(v[0]); }, {x});
  expect_bf16_grads_close([](const auto& v) { return mean(v[0], {0, 2}, true); }, {x});
  expect_bf16_grads_close([](const auto& v) { return amax(v[0], {2}); }, {x});
  expect_bf16_grads_close([](const auto& v) { return logsumexp(v[0], {-1}); }, {x});
  expect_bf16_grads_close([](const auto& v) { return max(v[0], 1).first; }, {x});
}

}  // namespace
}  // namespace moegrad
