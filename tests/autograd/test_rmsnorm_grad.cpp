#include "autograd/ops/rmsnorm.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(RmsNormGrad, InputAndWeight) {
  Tensor x = random_tensor({2, 3, 5}, 1), w = random_tensor({5}, 2);
  EXPECT_GRADCHECK([](const auto& v) { return rmsnorm(v[0], v[1], 1e-5); }, {x, w});
}

TEST(RmsNormGrad, NonContiguousInput) {
  Tensor x = random_tensor({6, 4}, 3).t();  // [4, 6]
  Tensor w = random_tensor({6}, 4);
  EXPECT_GRADCHECK([](const auto& v) { return rmsnorm(v[0], v[1], 1e-6); }, {x, w});
}

TEST(RmsNormGrad, ManyRowBlocksForTheWeight) {
  // More rows than dw's block count, so the weight gradient sums block partials.
  Tensor x = random_tensor({70, 2}, 5), w = random_tensor({2}, 6);
  EXPECT_GRADCHECK([](const auto& v) { return rmsnorm(v[0], v[1], 1e-5); }, {x, w});
}

}  // namespace
}  // namespace moegrad
