#include "autograd/ops/binary.h"
#include "autograd/ops/softmax.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(SoftmaxGrad, EveryDimAndLayout) {
  std::vector<Tensor> xs = {random_tensor({3, 4, 5}, 1),
                            random_tensor({5, 4, 3}, 2).permute({2, 1, 0}),
                            random_tensor({3, 4, 7}, 3).narrow(2, 1, 5)};
  for (const Tensor& x : xs) {
    for (int64_t d : {0, 1, -1}) {
      EXPECT_GRADCHECK([&](const auto& v) { return softmax(v[0], d); }, {x});
      EXPECT_GRADCHECK([&](const auto& v) { return log_softmax(v[0], d); }, {x});
    }
  }
}

TEST(SoftmaxGrad, InputUsedTwice) {
  Tensor x = random_tensor({4, 6}, 4);
  EXPECT_GRADCHECK([](const auto& v) { return mul(softmax(v[0], 1), log_softmax(v[0], 0)); }, {x});
}

}  // namespace
}  // namespace moegrad
