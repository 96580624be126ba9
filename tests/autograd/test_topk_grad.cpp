#include "autograd/ops/binary.h"
#include "autograd/ops/topk.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(TopKGrad, ValuesScatterBack) {
  Tensor x = random_tensor({3, 6}, 1);
  for (int64_t k : {1, 3, 6})
    EXPECT_GRADCHECK([&](const auto& v) { return topk(v[0], k).first; }, {x});
}

TEST(TopKGrad, StridedInputUsedTwice) {
  Tensor x = random_tensor({5, 2, 3}, 2).transpose(0, 2);  // [3, 2, 5]
  EXPECT_GRADCHECK([](const auto& v) { return mul(topk(v[0], 2).first, topk(v[0], 2).first); },
                   {x});
}

}  // namespace
}  // namespace moegrad
