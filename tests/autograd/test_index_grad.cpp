#include "autograd/ops/binary.h"
#include "autograd/ops/index.h"
#include "tests/autograd/bf16_grads.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(IndexGrad, IndexSelectWithDuplicates) {
  Tensor x = random_tensor({4, 3}, 1);
  Tensor idx = from_vector<int64_t>({1, 3, 1, 1}, {4});
  EXPECT_GRADCHECK([&](const auto& v) { return index_select(v[0], 0, idx); }, {x});
  Tensor xt = random_tensor({3, 4}, 2).t();  // [4, 3], strided
  Tensor idx32 = from_vector<int32_t>({2, 2, 0}, {3});
  EXPECT_GRADCHECK([&](const auto& v) { return index_select(v[0], 1, idx32); }, {xt});
}

TEST(IndexGrad, IndexAddToInputAndSource) {
  Tensor x = random_tensor({4, 3}, 3);
  Tensor src = random_tensor({3, 5}, 4).t();  // [5, 3], strided
  Tensor idx = from_vector<int32_t>({0, 2, 0, 0, 3}, {5});
  EXPECT_GRADCHECK([&](const auto& v) { return index_add(v[0], 0, idx, v[1]); }, {x, src});
  Tensor s1 = random_tensor({4, 2}, 5);
  Tensor idx1 = from_vector<int64_t>({2, 2}, {2});
  EXPECT_GRADCHECK([&](const auto& v) { return index_add(v[0], -1, idx1, v[1]); }, {x, s1});
}

TEST(IndexGrad, IndexAddToZerosToSource) {
  Tensor src = random_tensor({3, 5}, 11).t();  // [5, 3], strided
  Tensor idx = from_vector<int64_t>({0, 2, 0, 0, 3}, {5});
  EXPECT_GRADCHECK([&](const auto& v) { return index_add_to_zeros({4, 3}, 0, idx, v[0]); },
                   {src});
}

TEST(IndexGrad, GatherWithDuplicates) {
  Tensor x = random_tensor({3, 4}, 6);
  Tensor idx = from_vector<int64_t>({0, 0, 3, 1, 1, 1, 2, 3, 0, 0}, {2, 5});
  EXPECT_GRADCHECK([&](const auto& v) { return gather(v[0], 1, idx); }, {x});
  Tensor xt = random_tensor({4, 3}, 7).t();  // [3, 4], strided
  Tensor idx0 = from_vector<int32_t>({2, 2, 0, 1, 2, 2, 2, 0}, {2, 4});
  EXPECT_GRADCHECK([&](const auto& v) { return gather(v[0], 0, idx0); }, {xt});
}

TEST(IndexGrad, ScatterAddToInputAndSource) {
  Tensor x = random_tensor({3, 4}, 8);
  Tensor idx = from_vector<int64_t>({3, 3, 0, 1, 1, 1}, {2, 3});
  Tensor src = random_tensor({3, 2}, 9).t();  // [2, 3], strided
  EXPECT_GRADCHECK([&](const auto& v) { return scatter_add(v[0], 1, idx, v[1]); }, {x, src});
}

TEST(IndexGrad, InputUsedTwice) {
  Tensor x = random_tensor({4, 2}, 10);
  Tensor a = from_vector<int64_t>({3, 0, 3}, {3}), b = from_vector<int64_t>({3, 3, 1}, {3});
  EXPECT_GRADCHECK(
      [&](const auto& v) { return mul(index_select(v[0], 0, a), index_select(v[0], 0, b)); }, {x});
}

}  // namespace
}  // namespace moegrad

namespace moegrad {
namespace {

TEST(IndexGrad, Bf16GraphMatchesF32) {
  using testing::expect_bf16_grads_close;
  Tensor x = testing::random_tensor({3, 5}, 51, DType::BF16).t();  // [5, 3], strided
  Tensor idx = from_vector<int64_t>({1, 4, 1, 1, 0, 4}, {6});
  expect_bf16_grads_close([&](const auto& v) { return index_select(v[0], 0, idx); }, {x});
  Tensor src = testing::random_tensor({6, 3}, 52, DType::BF16);
  expect_bf16_grads_close([&](const auto& v) { return index_add(v[0], 0, idx, v[1]); }, {x, src});
  Tensor gidx = from_vector<int32_t>({2, 0, 2, 1, 1, 1}, {2, 3});
  expect_bf16_grads_close([&](const auto& v) { return gather(v[0], 1, gidx); }, {x});
  Tensor gsrc = testing::random_tensor({2, 3}, 53, DType::BF16);
  expect_bf16_grads_close([&](const auto& v) { return scatter_add(v[0], 1, gidx, v[1]); },
                          {x, gsrc});
}

}  // namespace
}  // namespace moegrad
