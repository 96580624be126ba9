#include "core/ops/multi_tensor.h"

#include "core/ops/binary.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

double naive_squares(const std::vector<Tensor>& ts) {
  double s = 0;
  for (const Tensor& t : ts)
    if (t.defined())
      for (double v : t.to_vector<double>()) s += v * v;
  return s;
}

std::vector<Tensor> mixed_list() {
  return {random_tensor({3, 5}, 1, DType::F32),
          random_tensor({70001}, 2),                      // more than one chunk
          random_tensor({6, 4}, 3).t(),                   // non-contiguous
          Tensor(),                                       // a parameter without gradient
          random_tensor({0, 3}, 4, DType::F32),           // empty
          random_tensor({129}, 5, DType::F32)};
}

TEST(MultiTensor, SumOfSquaresOverEveryTensorInF64) {
  const std::vector<Tensor> ts = mixed_list();
  const Tensor s = sum_of_squares(ts);
  EXPECT_EQ(s.dtype(), DType::F64);
  EXPECT_EQ(s.shape(), (Shape{1}));
  EXPECT_NEAR(s.item(), naive_squares(ts), 1e-9 * naive_squares(ts));
  EXPECT_EQ(sum_of_squares(ts).item(), s.item());  // the same bits again
  EXPECT_EQ(sum_of_squares({}).item(), 0.0);
}

TEST(MultiTensor, ScaleMultipliesEveryTensorInPlace) {
  std::vector<Tensor> ts = mixed_list();
  std::vector<Tensor> expected;
  for (const Tensor& t : ts)
    expected.push_back(t.defined() ? mul(t, scalar_tensor(0.37, t.dtype())) : Tensor());
  scale_(ts, 0.37);
  for (size_t i = 0; i < ts.size(); ++i) {
    if (ts[i].defined()) {
      EXPECT_ALL_CLOSE(ts[i], expected[i], 0, 0);
    }
  }
}

TEST(MultiTensor, ErrorsNameTheOp) {
  testing::expect_error([] { sum_of_squares({zeros({2}, DType::I64)}); },
                        "sum_of_squares: expected float32 or float64 tensors, got int64");
  testing::expect_error([] { scale_({zeros({2}, DType::I32)}, 2.0); }, "scale_");
}

}  // namespace
}  // namespace moegrad
