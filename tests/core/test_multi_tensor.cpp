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

// A bf16 model's gradients are bf16, beside f32 ones (a router kept in f32, say).
std::vector<Tensor> list_with_bf16() {
  return {random_tensor({3, 5}, 11, DType::BF16),
          random_tensor({70001}, 12, DType::F32),
          random_tensor({6, 4}, 13, DType::BF16).t(),  // non-contiguous
          random_tensor({129}, 14, DType::BF16),
          random_tensor({7}, 15, DType::F64)};
}

TEST(MultiTensor, Bf16SumOfSquaresIsExactInF64) {
  const std::vector<Tensor> ts = list_with_bf16();
  const Tensor s = sum_of_squares(ts);
  EXPECT_EQ(s.dtype(), DType::F64);
  // Squares of bf16 values are exact in f64, so only the f64 additions round.
  EXPECT_NEAR(s.item(), naive_squares(ts), 1e-12 * naive_squares(ts));
  EXPECT_EQ(sum_of_squares(ts).item(), s.item());
}

TEST(MultiTensor, Bf16ScaleRoundsTheF32ProductOnce) {
  std::vector<Tensor> ts = list_with_bf16();
  std::vector<Tensor> expected;
  for (const Tensor& t : ts) {
    Tensor wide = t.dtype() == DType::F64 ? t : t.to(DType::F32);
    expected.push_back(mul(wide, scalar_tensor(0.37, wide.dtype())).to(t.dtype()));
  }
  scale_(ts, 0.37);
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(ts[i].dtype(), expected[i].dtype());
    EXPECT_ALL_CLOSE(ts[i], expected[i], 0, 0) << "tensor " << i;
  }
}

// Sums of f32 for addends in bf16 and f32, one of them not contiguous, one missing.
struct Accumulation {
  std::vector<Tensor> sums, addends;
};

Accumulation accumulation(Device device = Device::cpu()) {
  Accumulation a;
  a.addends = list_with_bf16();
  a.addends[4] = Tensor();  // a parameter this micro-batch did not reach
  for (size_t i = 0; i < a.addends.size(); ++i)
    a.sums.push_back(random_tensor(i == 4 ? Shape{7} : a.addends[i].shape(), 20 + i, DType::F32));
  for (Tensor& t : a.sums) t = t.to(device);
  for (Tensor& t : a.addends) t = t.defined() ? t.to(device) : t;
  return a;
}

TEST(MultiTensor, AccumulateAddsTheWidenedAddendsInF32) {
  Accumulation a = accumulation();
  std::vector<Tensor> expected;
  for (size_t i = 0; i < a.sums.size(); ++i)
    expected.push_back(a.addends[i].defined() ? add(a.sums[i], a.addends[i].to(DType::F32))
                                              : a.sums[i].clone());
  accumulate_(a.sums, a.addends);
  for (size_t i = 0; i < a.sums.size(); ++i) {
    EXPECT_EQ(a.sums[i].dtype(), DType::F32);
    EXPECT_ALL_CLOSE(a.sums[i], expected[i], 0, 0) << "sum " << i;
  }
}

TEST(MultiTensor, AccumulateChecksItsPairs) {
  const Tensor sum = zeros({4}), x = zeros({4}, DType::BF16);
  testing::expect_error([&] { accumulate_({sum}, {x, x}); }, "accumulate_: 1 sums but 2 addends");
  testing::expect_error([&] { accumulate_({sum.to(DType::BF16)}, {x}); },
                        "accumulate_: sum 0 must be a contiguous float32 tensor, got bfloat16");
  testing::expect_error([&] { accumulate_({zeros({2, 3}).t()}, {zeros({3, 2})}); },
                        "accumulate_: sum 0 must be a contiguous float32 tensor, got float32 (not "
                        "contiguous)");
  testing::expect_error([&] { accumulate_({sum}, {zeros({4}, DType::F64)}); },
                        "accumulate_: addend 0 must be float32 or bfloat16, got float64");
  testing::expect_error([&] { accumulate_({sum}, {zeros({2, 2})}); },
                        "accumulate_: addend 0 [2, 2] differs from its sum [4]");
}

TEST(MultiTensor, ErrorsNameTheOp) {
  testing::expect_error([] { sum_of_squares({zeros({2}, DType::I64)}); },
                        "sum_of_squares: expected float32, float64 or bfloat16 tensors, got int64");
  testing::expect_error([] { scale_({zeros({2}, DType::I32)}, 2.0); }, "scale_");
}

}  // namespace
}  // namespace moegrad
