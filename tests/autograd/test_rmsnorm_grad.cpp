#include <array>

#include "autograd/ops/rmsnorm.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(RmsNormGrad, InputAndWeight) {
  Tensor x = random_tensor({2, 3, 5}, 1), w = random_tensor({5}, 2);
  EXPECT_GRADCHECK([](const auto& v) { return rmsnorm(v[0], v[1], 1e-5); }, {x, w});
}

TEST(RmsNormGrad, NonContiguousInput) {
  Tensor x = random_tensor({6, 4}, 3).t();  // [4, 6]
  Tensor w = random_tensor({6}, 4);
  EXPECT_GRADCHECK([](const auto& v) { return rmsnorm(v[0], v[1], 1e-6); }, {x, w});
}

TEST(RmsNormGrad, ManyRowBlocksForTheWeight) {
  // More rows than dw's block count, so the weight gradient sums block partials.
  Tensor x = random_tensor({70, 2}, 5), w = random_tensor({2}, 6);
  EXPECT_GRADCHECK([](const auto& v) { return rmsnorm(v[0], v[1], 1e-5); }, {x, w});
}

// bf16 Variables: the backward rule feeds the forward's f32 rstd to the bf16 kernel, and the
// gradients come back in bf16, within bf16's precision of the f32 graph's.
TEST(RmsNormGrad, Bf16VariablesMatchFloat32) {
  Tensor x = random_tensor({7, 5}, 7, DType::BF16).t(), w = random_tensor({7}, 8, DType::BF16);
  Tensor g = random_tensor({5, 7}, 9, DType::BF16);
  auto run = [&](DType dt) {
    Variable xv(x.to(dt), true), wv(w.to(dt), true);
    rmsnorm(xv, wv, 1e-5).backward(g.to(dt));
    return std::array<Tensor, 2>{xv.grad(), wv.grad()};
  };
  const auto [dx, dw] = run(DType::BF16);
  const auto [dx32, dw32] = run(DType::F32);
  ASSERT_EQ(dx.dtype(), DType::BF16);
  ASSERT_EQ(dw.dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(dx.to(DType::F32), dx32, 1e-2, 1e-2);
  EXPECT_ALL_CLOSE(dw.to(DType::F32), dw32, 1e-2, 1e-2);
}

}  // namespace
}  // namespace moegrad
