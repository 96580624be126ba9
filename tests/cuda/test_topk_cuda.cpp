#include <limits>

#include "core/ops/topk.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

// Same order (ties to the lower index, NaN first) on both backends: exact agreement.
void expect_parity(const Tensor& x, int64_t k) {
  auto [cv, ci] = topk(x, k);
  auto [gv, gi] = topk(x.to(Device::cuda()), k);
  EXPECT_EQ(gi.to_vector<int64_t>(), ci.to_vector<int64_t>())
      << "k = " << k << ", x " << shape_str(x.shape());
  EXPECT_ALL_CLOSE(gv, cv, 0, 0);
}

TEST(TopKCuda, RouterSizesMatchCpu) {
  SKIP_WITHOUT_GPU();
  for (int64_t experts : {8, 37, 64, 256}) {
    Tensor x = random_tensor({1000, experts}, uint64_t(experts), DType::F32);
    for (int64_t k : {1, 2, 8}) expect_parity(x, k);
  }
}

// bf16 compares as f32 on both backends: the same picks, exact values.
TEST(TopKCuda, Bf16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  Tensor x = random_tensor({1000, 37}, 4, DType::BF16);
  for (int64_t k : {1, 2, 8}) expect_parity(x, k);
  expect_parity(random_tensor({33, 4, 5}, 5, DType::BF16).transpose(0, 2), 7);
}

TEST(TopKCuda, LargeKTiesNanAndStrides) {
  SKIP_WITHOUT_GPU();
  expect_parity(random_tensor({3, 1000}, 1, DType::F64), 300);
  Generator gen(2);
  expect_parity(randint(0, 3, {50, 70}, gen).to(DType::F32), 70);  // ties everywhere
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = from_vector<float>({1, nan, 2, nan, -0.0f, 0.0f, 2, 5}, {2, 4});
  expect_parity(x, 4);
  expect_parity(random_tensor({33, 4, 5}, 3, DType::F32).transpose(0, 2), 7);  // [5, 4, 33]
}

}  // namespace
}  // namespace moegrad
