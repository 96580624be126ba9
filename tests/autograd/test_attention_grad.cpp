#include <array>
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

// bf16 Variables: the backward rule feeds the forward's bf16 output and f32 logsumexp to the
// bf16 kernel; the gradients come back in bf16, within bf16's precision of the f32 graph's.
TEST(AttentionGrad, Bf16VariablesMatchFloat32) {
  // 3 query heads over 1 kv head, q as [B, T, H, D].transpose(1, 2), odd T and D.
  Tensor q = random_tensor({1, 5, 3, 3}, 14, DType::BF16).transpose(1, 2);
  Tensor k = random_tensor({1, 1, 5, 3}, 15, DType::BF16);
  Tensor v = random_tensor({1, 1, 5, 3}, 16, DType::BF16);
  Tensor g = random_tensor({1, 3, 5, 3}, 17, DType::BF16);
  auto run = [&](DType dt) {
    Variable qv(q.to(dt), true), kv(k.to(dt), true), vv(v.to(dt), true);
    scaled_dot_product_attention(qv, kv, vv).backward(g.to(dt));
    return std::array<Tensor, 3>{qv.grad(), kv.grad(), vv.grad()};
  };
  const auto b = run(DType::BF16);
  const auto f = run(DType::F32);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(b[i].dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(b[i].to(DType::F32), f[i], 1e-2, 1e-2) << "input " << i;
  }
}

}  // namespace
}  // namespace moegrad
