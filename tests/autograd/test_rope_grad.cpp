#include "autograd/ops/rope.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(RopeGrad, DefaultPositions) {
  Tensor x = random_tensor({1, 2, 3, 4}, 1);
  EXPECT_GRADCHECK([](const auto& v) { return rope(v[0], 10000.0); }, {x});
}

TEST(RopeGrad, TransposedInputAndExplicitPositions) {
  Tensor x = random_tensor({1, 3, 2, 6}, 2).transpose(1, 2);  // [1, 2, 3, 6]
  Tensor pos = from_vector<int64_t>({4, 9, 1}, {3});
  EXPECT_GRADCHECK([pos](const auto& v) { return rope(v[0], 100.0, pos); }, {x});
}

}  // namespace
}  // namespace moegrad
