#include "autograd/ops/binary.h"
#include "autograd/ops/views.h"
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
