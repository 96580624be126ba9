#include "core/tensor.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

TEST(TensorViews, WriteThroughTransposeIsVisibleInBase) {
  Tensor base = arange(6, DType::F32).view({2, 3});
  Tensor t = base.transpose(0, 1);
  EXPECT_TRUE(t.shares_storage(base));
  EXPECT_FALSE(t.is_contiguous());
  t.select(0, 2).select(0, 1).fill_(42.0);  // t[2][1] is base[1][2]
  EXPECT_EQ(base.to_vector<float>()[5], 42.0f);
}

TEST(TensorViews, ContiguousCopiesOnlyWhenNeeded) {
  Tensor base = arange(6, DType::F32).view({2, 3});
  EXPECT_TRUE(base.contiguous().shares_storage(base));
  Tensor t = base.t().contiguous();
  EXPECT_FALSE(t.shares_storage(base));
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

}  // namespace
}  // namespace moegrad
