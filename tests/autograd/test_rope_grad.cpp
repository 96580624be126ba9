#include "autograd/ops/rope.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(RopeGrad, DefaultPositions) {
  Tensor x = random_tensor({1, 2, 3, 4}, 1);
  EXPECT_GRADCHECK([](const auto& v) { return rope(v[0], 10000.0); }, {x});
}

TEST(RopeGrad, TransposedInputAndExplicitPositions) {
  Tensor x = random_tensor({1, 3, 2, 6}, 2).transpose(1, 2);  // [1, 2, 3, 6]
  Tensor pos = from_vector<int64_t>({4, 9, 1}, {3});
  EXPECT_GRADCHECK([pos](const auto& v) { return rope(v[0], 100.0, pos); }, {x});
}

// bf16 Variables: the gradient is the inverse rotation by the f32 tables, in bf16.
TEST(RopeGrad, Bf16VariablesMatchFloat32) {
  Tensor x = random_tensor({1, 5, 3, 6}, 3, DType::BF16).transpose(1, 2);  // [1, 3, 5, 6]
  Tensor g = random_tensor({1, 3, 5, 6}, 4, DType::BF16);
  auto run = [&](DType dt) {
    Variable xv(x.to(dt), true);
    Variable y = rope(xv, 10000.0);
    EXPECT_EQ(y.data().dtype(), dt);
    y.backward(g.to(dt));
    return xv.grad();
  };
  Tensor dx = run(DType::BF16);
  ASSERT_EQ(dx.dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(dx.to(DType::F32), run(DType::F32), 1e-2, 1e-2);
}

}  // namespace
}  // namespace moegrad
