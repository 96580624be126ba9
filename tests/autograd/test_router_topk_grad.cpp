#include "autograd/ops/binary.h"
#include "autograd/ops/router_topk.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

// Random f64 logits are distinct, so no finite-difference step swaps two picks.
TEST(RouterTopkGrad, WeightsWithAndWithoutRenormalisation) {
  const Tensor x = random_tensor({3, 5}, 1);
  for (int64_t k : {1, 2, 5})
    for (bool normalize : {false, true})
      EXPECT_GRADCHECK([&](const auto& v) { return router_topk(v[0], k, normalize).weights; }, {x});
}

TEST(RouterTopkGrad, StridedLogitsUsedTwice) {
  const Tensor x = random_tensor({6, 3}, 2).transpose(0, 1);  // [3, 6]
  EXPECT_GRADCHECK(
      [](const auto& v) {
        return mul(router_topk(v[0], 2, true).weights, router_topk(v[0], 2, false).weights);
      },
      {x});
}

}  // namespace
}  // namespace moegrad
