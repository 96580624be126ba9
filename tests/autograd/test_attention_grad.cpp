#include <cmath>

#include "autograd/ops/attention.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(AttentionGrad, CausalGroupedQuery) {
  // 2 query heads per kv head, S > T.
  Tensor q = random_tensor({1, 4, 3, 2}, 1), k = random_tensor({1, 2, 4, 2}, 2);
  Tensor v = random_tensor({1, 2, 4, 2}, 3);
  EXPECT_GRADCHECK([](const auto& a) { return scaled_dot_product_attention(a[0], a[1], a[2]); },
                   {q, k, v});
}

TEST(AttentionGrad, MaskScaleAndNoCausal) {
  Tensor q = random_tensor({2, 1, 3, 3}, 4), k = random_tensor({2, 1, 3, 3}, 5);
  Tensor v = random_tensor({2, 1, 3, 3}, 6);
  Tensor mask = zeros({2, 1, 1, 3}, DType::F64);
  mask.select(0, 0).select(2, 2).fill_(-INFINITY);  // batch 0 pads key 2
  EXPECT_GRADCHECK(
      [mask](const auto& a) {
        return scaled_dot_product_attention(a[0], a[1], a[2], false, mask, 0.7);
      },
      {q, k, v});
}

TEST(AttentionGrad, TransposedInputsAndFullyMaskedRow) {
  // q as [B, T, H, D].transpose(1, 2); k with non-unit stride along D. With S < T the first
  // query sees no key (zero gradient).
  Tensor q = random_tensor({1, 3, 2, 2}, 7).transpose(1, 2);
  Tensor k = random_tensor({1, 1, 2, 2}, 8).transpose(2, 3), v = random_tensor({1, 1, 2, 2}, 9);
  EXPECT_GRADCHECK([](const auto& a) { return scaled_dot_product_attention(a[0], a[1], a[2]); },
                   {q, k, v});
}

TEST(AttentionGrad, OneInputAsQueryKeyAndValue) {
  Tensor x = random_tensor({1, 2, 3, 2}, 13);
  EXPECT_GRADCHECK(
      [](const auto& a) { return scaled_dot_product_attention(a[0], a[0], a[0], false); }, {x});
}

TEST(AttentionGrad, AcrossQueryBlocks) {
  // T = 66 spans two of the kernel's query blocks, whose dk, dv contributions accumulate.
  Tensor q = random_tensor({1, 1, 66, 1}, 10), k = random_tensor({1, 1, 66, 1}, 11);
  Tensor v = random_tensor({1, 1, 66, 1}, 12);
  EXPECT_GRADCHECK([](const auto& a) { return scaled_dot_product_attention(a[0], a[1], a[2]); },
                   {q, k, v});
}

}  // namespace
}  // namespace moegrad
