#include "autograd/ops/binary.h"
#include "autograd/ops/join.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(JoinGrad, ConcatWithRepeatedAndStridedInputs) {
  Tensor a = random_tensor({3, 2}, 1).t();  // [2, 3]
  Tensor b = random_tensor({2, 2}, 2);
  EXPECT_GRADCHECK([](const auto& v) { return concat({v[0], v[1], v[0]}, 1); }, {a, b});
  Tensor c = random_tensor({1, 3}, 3);
  EXPECT_GRADCHECK([](const auto& v) { return concat({v[0], v[1]}, 0); }, {a, c});
}

TEST(JoinGrad, Stack) {
  Tensor a = random_tensor({2, 3}, 4), b = random_tensor({3, 2}, 5).t();
  for (int64_t d : {0, 1, 2})
    EXPECT_GRADCHECK([d](const auto& v) { return stack({v[0], v[1], v[0]}, d); }, {a, b});
}

TEST(JoinGrad, SplitPiecesAreNarrows) {
  Tensor x = random_tensor({4, 7}, 6);
  // The middle piece is unused: its slice of the gradient must stay zero.
  EXPECT_GRADCHECK(
      [](const auto& v) {
        std::vector<Variable> p = split(v[0], {2, 3, 2}, 1);
        return mul(p[0], p[2]);
      },
      {x});
  Tensor y = random_tensor({5, 3}, 7).t();  // [3, 5]
  EXPECT_GRADCHECK(
      [](const auto& v) {
        std::vector<Variable> p = split_chunks(v[0], 2, -1);  // 2, 2, 1
        return concat({p[2], p[0], p[1], p[0]}, 1);
      },
      {y});
}

}  // namespace
}  // namespace moegrad
