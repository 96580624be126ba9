#include <cmath>

#include "core/ops/binary.h"
#include "core/ops/compare.h"
#include "core/ops/unary.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::error_of;

TEST(Elementwise, BinaryBroadcasting) {
  Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = from_vector<float>({10, 20, 30}, {3});
  Tensor c = from_vector<float>({100, 200}, {2, 1});
  EXPECT_EQ(add(a, b).to_vector<float>(), (std::vector<float>{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ(mul(a, c).to_vector<float>(), (std::vector<float>{100, 200, 300, 800, 1000, 1200}));
  EXPECT_EQ(sub(b, c).shape(), (Shape{2, 3}));
  EXPECT_EQ(div(a, b).to_vector<float>()[5], 0.2f);
  EXPECT_EQ(pow(a, full({}, 2.0)).to_vector<float>()[2], 9.0f);
  EXPECT_EQ(maximum(a, full({}, 3.5)).to_vector<float>(), (std::vector<float>{3.5, 3.5, 3.5, 4, 5, 6}));
}

TEST(Elementwise, MismatchedShapesNameOpAndShapes) {
  EXPECT_EQ(error_of([] { add(zeros({2, 3}), zeros({4})); }),
            "binary: shapes [2, 3] and [4] cannot be broadcast together");
  EXPECT_EQ(error_of([] { add(zeros({2}), zeros({2}, DType::F64)); }),
            "binary: expected tensors of the same dtype, got float32 [2] and float64 [2]");
  EXPECT_EQ(error_of([] { add_(zeros({3}), zeros({2, 3})); }),
            "binary_: in-place result of shape [2, 3] does not fit destination [3]");
  EXPECT_EQ(error_of([] { exp(zeros({2}, DType::I64)); }),
            "unary: expected a float32, float64 or bfloat16 tensor, got int64");
  EXPECT_EQ(error_of([] { add(zeros({2}, DType::BF16), zeros({2})); }),
            "binary: expected tensors of the same dtype, got bfloat16 [2] and float32 [2]");
}

TEST(Elementwise, UnaryValues) {
  Tensor x = from_vector<double>({-2.0, -0.5, 0.0, 0.5, 3.0}, {5});
  std::vector<double> xs = x.to_vector<double>();
  auto check = [&](const Tensor& y, auto f) {
    std::vector<double> v = y.to_vector<double>();
    for (size_t i = 0; i < xs.size(); ++i) EXPECT_NEAR(v[i], f(xs[i]), 1e-12) << "at x=" << xs[i];
  };
  check(neg(x), [](double v) { return -v; });
  check(exp(x), [](double v) { return std::exp(v); });
  check(abs(x), [](double v) { return std::fabs(v); });
  check(tanh(x), [](double v) { return std::tanh(v); });
  check(sigmoid(x), [](double v) { return 1 / (1 + std::exp(-v)); });
  check(silu(x), [](double v) { return v / (1 + std::exp(-v)); });
  check(relu(x), [](double v) { return v > 0 ? v : 0; });
  check(gelu(x), [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); });
  check(clamp(x, -1, 1), [](double v) { return std::min(1.0, std::max(-1.0, v)); });
  check(rsub_scalar(x, 1), [](double v) { return 1 - v; });
  Tensor p = from_vector<double>({0.25, 4.0}, {2});
  EXPECT_EQ(sqrt(p).to_vector<double>(), (std::vector<double>{0.5, 2.0}));
  EXPECT_EQ(rsqrt(p).to_vector<double>(), (std::vector<double>{2.0, 0.5}));
  EXPECT_EQ(log(full({1}, std::exp(1.0), DType::F64)).item(), 1.0);
}

TEST(Elementwise, CompareAndWhere) {
  Tensor a = from_vector<int64_t>({1, 5, 3}, {3});
  Tensor b = from_vector<int64_t>({2, 5, 1}, {3});
  EXPECT_EQ(lt(a, b).to(DType::I64).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0}));
  EXPECT_EQ(eq(a, b).to(DType::I64).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 0}));
  Tensor x = from_vector<float>({1, 2, 3}, {3}), y = full({}, -1.0);
  EXPECT_EQ(where(ge(a, b), x, y).to_vector<float>(), (std::vector<float>{-1, 2, 3}));
  EXPECT_THROW(where(x, x, y), Error);  // condition must be bool
}

TEST(Elementwise, StridedOutputAndLargeParallelInput) {
  // Above the parallel grain, with a transposed operand.
  Tensor a = testing::random_tensor({300, 257}, 1, DType::F32);
  Tensor b = testing::random_tensor({257, 300}, 2, DType::F32).t();
  Tensor c = add(a, b);
  std::vector<float> av = a.to_vector<float>(), bv = b.contiguous().to_vector<float>(), cv = c.to_vector<float>();
  for (size_t i = 0; i < cv.size(); ++i) ASSERT_EQ(cv[i], av[i] + bv[i]);
}

// A bf16 op is the f32 op on the same values, rounded once: `got` (bf16) must equal `want`
// (the f32 op on the inputs widened to f32) rounded to bf16, bit for bit.
void expect_rounded_f32(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.dtype(), DType::BF16);
  EXPECT_EQ(want.dtype(), DType::F32);
  EXPECT_ALL_CLOSE(got, want.to(DType::BF16), 0, 0);
  EXPECT_ALL_CLOSE(got.to(DType::F32), want, 1e-2, 1e-2);
}

Tensor f32(const Tensor& t) { return t.to(DType::F32); }

TEST(Elementwise, Bf16BinaryIsF32ArithmeticRoundedOnce) {
  Tensor a = testing::random_tensor({5, 7}, 11, DType::BF16);
  Tensor b = testing::random_tensor({7, 5}, 12, DType::BF16).t();  // non-contiguous
  Tensor row = testing::random_tensor({7}, 13, DType::BF16);       // broadcast
  Tensor base = add_scalar(abs(a), 0.25);                           // pow needs x > 0
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow,
                      BinaryOp::Maximum, BinaryOp::Minimum}) {
    SCOPED_TRACE(binary_op_name(op));
    Tensor x = op == BinaryOp::Pow ? base : a;
    expect_rounded_f32(binary(op, x, b), binary(op, f32(x), f32(b)));
    expect_rounded_f32(binary(op, x, row), binary(op, f32(x), f32(row)));
  }
  Tensor acc = a.clone();
  add_(acc, row);
  expect_rounded_f32(acc, add(f32(a), f32(row)));
}

TEST(Elementwise, Bf16UnaryActivationGradAndScalarOps) {
  Tensor x = testing::random_tensor({9, 5}, 14, DType::BF16).t();  // odd sizes, non-contiguous
  Tensor pos = add_scalar(abs(x), 0.125);
  for (UnaryOp op : {UnaryOp::Neg, UnaryOp::Exp, UnaryOp::Log, UnaryOp::Sqrt, UnaryOp::Rsqrt,
                     UnaryOp::Abs, UnaryOp::Sign, UnaryOp::Square, UnaryOp::Reciprocal,
                     UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::Silu, UnaryOp::Relu,
                     UnaryOp::Gelu}) {
    SCOPED_TRACE(unary_op_name(op));
    bool needs_positive = op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt;
    Tensor in = needs_positive ? pos : x;
    expect_rounded_f32(unary(op, in), unary(op, f32(in)));
  }
  Tensor g = testing::random_tensor({5, 9}, 15, DType::BF16);
  for (ActivationGrad op : {ActivationGrad::Sigmoid, ActivationGrad::Silu, ActivationGrad::Relu,
                            ActivationGrad::Gelu, ActivationGrad::Tanh}) {
    SCOPED_TRACE(int(op));
    expect_rounded_f32(activation_backward(op, g, x), activation_backward(op, f32(g), f32(x)));
  }
  for (ScalarOp op : {ScalarOp::Add, ScalarOp::Mul, ScalarOp::RSub, ScalarOp::RDiv, ScalarOp::Pow,
                      ScalarOp::Clamp}) {
    SCOPED_TRACE(scalar_op_name(op));
    Tensor in = op == ScalarOp::Pow ? pos : x;
    // 0.3 is not a bf16 value: the scalar enters in f32, as it does for an f32 tensor.
    expect_rounded_f32(scalar_op(op, in, 0.3, 0.9), scalar_op(op, f32(in), 0.3, 0.9));
  }
}

TEST(Elementwise, Bf16CompareAndWhere) {
  Tensor a = testing::random_tensor({4, 7}, 16, DType::BF16);
  Tensor b = testing::random_tensor({7, 4}, 17, DType::BF16).t();
  Tensor same = a.narrow(1, 0, 3);
  for (CompareOp op : {CompareOp::Eq, CompareOp::Ne, CompareOp::Lt, CompareOp::Le, CompareOp::Gt,
                       CompareOp::Ge}) {
    SCOPED_TRACE(int(op));
    EXPECT_ALL_CLOSE(compare(op, a, b), compare(op, f32(a), f32(b)), 0, 0);
    EXPECT_ALL_CLOSE(compare(op, same, same), compare(op, f32(same), f32(same)), 0, 0);
  }
  Tensor w = where(gt(a, b), a, b);
  EXPECT_EQ(w.dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(w, maximum(a, b), 0, 0);
}

}  // namespace
}  // namespace moegrad

#include "core/ops/unary_op.h"

namespace moegrad {
namespace {

TEST(Elementwise, VectorisableExpIsWithinTwoUlpOfLibm) {
  float worst = 0;
  for (float x = -87.0f; x < 88.5f; x += 0.0037f) {
    float want = std::exp(x), got = math::exp_f32(x);
    worst = std::max(worst, std::fabs(got - want) / want);
  }
  EXPECT_LT(worst, 2.5e-7f);
  EXPECT_EQ(math::exp_f32(0.0f), 1.0f);
  EXPECT_EQ(math::exp_f32(-INFINITY), 0.0f);
  EXPECT_EQ(math::exp_f32(-1000.0f), 0.0f);
  EXPECT_TRUE(std::isinf(math::exp_f32(INFINITY)));
  EXPECT_TRUE(std::isinf(math::exp_f32(89.0f)));
  EXPECT_TRUE(std::isnan(math::exp_f32(NAN)));
}

}  // namespace
}  // namespace moegrad
