#include <functional>

#include "core/ops/join.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

using testing::error_of;

TEST(Join, ConcatAlongEachDim) {
  Tensor a = from_vector<float>({1, 2, 3, 4}, {2, 2});
  Tensor b = from_vector<float>({5, 6}, {1, 2});
  EXPECT_EQ(concat({a, b}, 0).to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  Tensor c = from_vector<float>({7, 8, 9, 10, 11, 12}, {2, 3});
  Tensor ac = concat({a, c}, -1);
  EXPECT_EQ(ac.shape(), (Shape{2, 5}));
  EXPECT_EQ(ac.to_vector<float>(), (std::vector<float>{1, 2, 7, 8, 9, 3, 4, 10, 11, 12}));
}

TEST(Join, ConcatStridedEmptyAndIntegerInputs) {
  Tensor a = random_tensor({3, 4}, 1).t();  // [4, 3], strided
  Tensor b = random_tensor({4, 2}, 2);
  Tensor e = zeros({4, 0}, DType::F64);
  Tensor out = concat({a, e, b}, 1);
  EXPECT_ALL_CLOSE(out.narrow(1, 0, 3), a, 0, 0);
  EXPECT_ALL_CLOSE(out.narrow(1, 3, 2), b, 0, 0);
  Tensor i = concat({arange(3), arange(2)});
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 0, 1}));
}

// Back to back in one storage: a view; anything else (a gap, the reverse order, another
// storage, a strided piece): concat's copy.
TEST(Join, ConcatAdjacentViewsPiecesThatFollowEachOther) {
  Tensor whole = random_tensor({5, 3}, 5);
  const Tensor a = whole.narrow(0, 0, 2), b = whole.narrow(0, 2, 1), c = whole.narrow(0, 3, 2);
  const Tensor view = concat_adjacent({a, b, c});
  EXPECT_TRUE(view.shares_storage(whole));
  EXPECT_EQ(view.offset(), 0);
  EXPECT_ALL_CLOSE(view, whole, 0, 0);
  EXPECT_TRUE(concat_adjacent({b, c}).shares_storage(whole));
  for (const std::vector<Tensor>& apart :
       {std::vector<Tensor>{a, c}, {b, a}, {a, whole.clone().narrow(0, 2, 1)},
        {whole.t().narrow(0, 0, 1), whole.t().narrow(0, 1, 1)}}) {
    const Tensor copy = concat_adjacent(apart);
    EXPECT_FALSE(copy.shares_storage(whole));
    EXPECT_ALL_CLOSE(copy, concat(apart, 0), 0, 0);
  }
  EXPECT_EQ(error_of([&] { concat_adjacent({a, random_tensor({1, 4}, 6)}); }),
            "concat: tensor 1 has shape [1, 4], which differs from [2, 3] outside dim 0");
}

TEST(Join, StackAdjacentViewsTheSlicesOfAStack) {
  // Every other [2, 3] slice of a [6, 2, 3] tensor, transposed: equal distances, same strides.
  const Tensor whole = random_tensor({6, 2, 3}, 7);
  std::vector<Tensor> slices;
  for (int64_t i = 1; i < 6; i += 2) slices.push_back(whole.select(0, i).t());
  const Tensor view = stack_adjacent(slices);
  EXPECT_TRUE(view.shares_storage(whole));
  EXPECT_EQ(view.shape(), (Shape{3, 3, 2}));
  EXPECT_ALL_CLOSE(view, stack(slices, 0), 0, 0);
  EXPECT_TRUE(stack_adjacent({slices[1]}).shares_storage(whole));
  const Tensor a = whole.select(0, 0), b = whole.select(0, 1), d = whole.select(0, 3);
  for (const std::vector<Tensor>& apart :
       {std::vector<Tensor>{a, b, d}, {b, a}, {a, a}, {a, whole.clone().select(0, 1)}}) {
    const Tensor copy = stack_adjacent(apart);
    EXPECT_FALSE(copy.shares_storage(whole));
    EXPECT_ALL_CLOSE(copy, stack(apart, 0), 0, 0);
  }
  // Equally far apart, but one slice transposed.
  const Tensor squares = random_tensor({2, 3, 3}, 8);
  const std::vector<Tensor> turned{squares.select(0, 0), squares.select(0, 1).t()};
  EXPECT_FALSE(stack_adjacent(turned).shares_storage(squares));
  EXPECT_ALL_CLOSE(stack_adjacent(turned), stack(turned, 0), 0, 0);
  EXPECT_EQ(error_of([&] {
              stack_adjacent({a, random_tensor({3, 2}, 6)});
            }),
            "stack: tensor 1 has shape [3, 2], tensor 0 has [2, 3]");
}

TEST(Join, StackInsertsDim) {
  Tensor a = from_vector<float>({1, 2, 3}, {3}), b = from_vector<float>({4, 5, 6}, {3});
  EXPECT_EQ(stack({a, b}).to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  Tensor s1 = stack({a, b}, 1);
  EXPECT_EQ(s1.shape(), (Shape{3, 2}));
  EXPECT_EQ(s1.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(stack({a, b}, -1).to_vector<float>(), s1.to_vector<float>());
  Tensor m = random_tensor({2, 3}, 3).t();
  Tensor s2 = stack({m, m, m}, 2);
  EXPECT_EQ(s2.shape(), (Shape{3, 2, 3}));
  EXPECT_ALL_CLOSE(s2.select(2, 1), m, 0, 0);
}

TEST(Join, SplitReturnsViews) {
  Tensor x = arange(12, DType::F32).view({3, 4});
  std::vector<Tensor> p = split(x, {1, 3}, 1);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_TRUE(p[1].shares_storage(x));
  EXPECT_EQ(p[0].to_vector<float>(), (std::vector<float>{0, 4, 8}));
  EXPECT_EQ(p[1].to_vector<float>(), (std::vector<float>{1, 2, 3, 5, 6, 7, 9, 10, 11}));
  std::vector<Tensor> c = split_chunks(arange(7), 3);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[2].to_vector<int64_t>(), (std::vector<int64_t>{6}));
  EXPECT_EQ(concat(c).to_vector<int64_t>(), arange(7).to_vector<int64_t>());
}

TEST(Join, Bf16ConcatStackCopyAndContiguous) {
  Tensor a = random_tensor({3, 5}, 4, DType::BF16).t();  // [5, 3], strided
  Tensor b = random_tensor({5, 2}, 5, DType::BF16);
  Tensor ab = concat({a, b}, 1);
  EXPECT_EQ(ab.dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(ab.narrow(1, 0, 3), a, 0, 0);
  EXPECT_ALL_CLOSE(ab.narrow(1, 3, 2), b, 0, 0);
  Tensor s = stack({a, a.contiguous()}, 1);
  EXPECT_EQ(s.shape(), (Shape{5, 2, 3}));
  EXPECT_ALL_CLOSE(s.select(1, 0), a, 0, 0);
  EXPECT_ALL_CLOSE(s.select(1, 1), a, 0, 0);
  EXPECT_TRUE(a.contiguous().is_contiguous());
  EXPECT_EQ(a.contiguous().to_vector<float>(), a.to(DType::F32).to_vector<float>());
  // f32 -> bf16 rounds to nearest even; bf16 -> f32 is exact.
  Tensor f = from_vector<float>({1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -2.5f}, {3});
  Tensor h = empty({3}, DType::BF16);
  h.copy_(f);
  EXPECT_EQ(h.to_vector<float>(), (std::vector<float>{1.0f, 1.015625f, -2.5f}));
  EXPECT_EQ(error_of([&] { concat({a, a.to(DType::F32)}); }),
            "concat: expected tensors of the same dtype, got bfloat16 [5, 3] and float32 [5, 3]");
}

TEST(Join, Errors) {
  Tensor a = zeros({2, 3});
  EXPECT_EQ(error_of([] { concat({}); }), "concat: expected at least one tensor");
  EXPECT_EQ(error_of([&] { concat({a, zeros({2, 4})}, 0); }),
            "concat: tensor 1 has shape [2, 4], which differs from [2, 3] outside dim 0");
  EXPECT_EQ(error_of([&] { concat({a, zeros({2, 3}, DType::F64)}); }).substr(0, 7), "concat:");
  EXPECT_EQ(error_of([&] { stack({a, zeros({3, 2})}); }),
            "stack: tensor 1 has shape [3, 2], tensor 0 has [2, 3]");
  EXPECT_EQ(error_of([&] { split(a, {1, 1}, 1); }),
            "split: sizes [1, 1] sum to 2, not to the size 3 of dim 1 of shape [2, 3]");
  EXPECT_EQ(error_of([&] { split_chunks(a, 0); }),
            "split_chunks: chunk size must be positive, got 0");
}

}  // namespace
}  // namespace moegrad
