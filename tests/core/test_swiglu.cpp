#include "core/ops/binary.h"
#include "core/ops/reduce.h"
#include "core/ops/swiglu.h"
#include "core/ops/unary.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::expect_error;
using testing::random_tensor;

Tensor f32(const Tensor& t) { return t.to(DType::F32); }

// The unfused graph the experts ran before: silu, then mul.
Tensor unfused(const Tensor& gate, const Tensor& up) { return mul(silu(gate), up); }

// swiglu's gradients written out with existing ops: s = sigmoid(g),
// d_gate = grad * up * s * (1 + g (1 - s)), d_up = grad * g * s.
std::pair<Tensor, Tensor> reference_grads(const Tensor& grad, const Tensor& g, const Tensor& up) {
  Tensor s = sigmoid(g);
  Tensor dsilu = mul(s, add_scalar(mul(g, rsub_scalar(s, 1.0)), 1.0));
  return {mul(mul(grad, up), dsilu), mul(mul(grad, g), s)};
}

TEST(Swiglu, ForwardMatchesSiluTimesUp) {
  Tensor g = random_tensor({5, 7}, 1), u = random_tensor({5, 7}, 2);
  EXPECT_ALL_CLOSE(swiglu(g, u), unfused(g, u), 1e-15, 1e-14);
  Tensor out = swiglu(f32(g), f32(u));
  EXPECT_EQ(out.dtype(), DType::F32);
  EXPECT_ALL_CLOSE(out, unfused(f32(g), f32(u)), 1e-7, 1e-6);
  // Large |gate|: the sigmoid saturates to 0 and 1 without NaN.
  Tensor big = from_vector<float>({-100.f, -30.f, 0.f, 30.f, 100.f}, {5});
  EXPECT_ALL_CLOSE(swiglu(big, ones({5})), from_vector<float>({0.f, -30.f * 9.3576e-14f, 0.f, 30.f, 100.f}, {5}),
                   1e-12, 1e-4);
}

TEST(Swiglu, OddSizesNonContiguousAndParallel) {
  // Odd sizes, a transposed gate and a narrowed up: the strided path.
  Tensor g = random_tensor({33, 65}, 3).t();
  Tensor u = random_tensor({65, 40}, 4).narrow(1, 3, 33);
  Tensor out = swiglu(g, u);
  EXPECT_TRUE(out.is_contiguous());
  EXPECT_EQ(out.shape(), (Shape{65, 33}));
  EXPECT_ALL_CLOSE(out, unfused(g.contiguous(), u.contiguous()), 1e-15, 1e-14);
  // Above the OpenMP grain, contiguous (one long run split across threads) and transposed.
  Tensor a = random_tensor({300, 129}, 5, DType::F32), b = random_tensor({300, 129}, 6, DType::F32);
  EXPECT_ALL_CLOSE(swiglu(a, b), unfused(a, b), 1e-7, 1e-6);
  Tensor at = random_tensor({129, 300}, 7, DType::F32).t();
  EXPECT_ALL_CLOSE(swiglu(at, b), unfused(at, b), 1e-7, 1e-6);
}

TEST(Swiglu, EmptyTensors) {
  Tensor g = zeros({0, 5}), u = zeros({0, 5});
  EXPECT_EQ(swiglu(g, u).shape(), (Shape{0, 5}));
  auto [dg, du] = swiglu_backward(g, g, u);
  EXPECT_EQ(dg.shape(), (Shape{0, 5}));
  EXPECT_EQ(du.shape(), (Shape{0, 5}));
}

TEST(Swiglu, ErrorsNameTheOpAndOperands) {
  expect_error([] { swiglu(zeros({2, 3}), zeros({2, 4})); },
               "swiglu: up shape [2, 4] differs from gate shape [2, 3]");
  expect_error([] { swiglu(zeros({2, 3}), zeros({3})); }, "swiglu: up shape [3]");  // no broadcasting
  expect_error([] { swiglu(zeros({2, 3}), zeros({2, 3}, DType::F64)); }, "swiglu: expected tensors of the same dtype");
  expect_error([] { swiglu(zeros({2}, DType::I64), zeros({2}, DType::I64)); },
               "swiglu: expected a float32, float64 or bfloat16 tensor, got int64");
  expect_error([] { swiglu(zeros({2}), Tensor()); }, "swiglu: up tensor is undefined");
  expect_error([] { swiglu_backward(zeros({3, 2}), zeros({2, 3}), zeros({2, 3})); },
               "swiglu_backward: grad shape [3, 2] differs from gate shape [2, 3]");
  expect_error([] { swiglu_backward(zeros({2}, DType::F64), zeros({2}), zeros({2})); },
               "swiglu_backward: expected tensors of the same dtype");
}

TEST(Swiglu, BackwardMatchesReference) {
  Tensor grad = random_tensor({4, 9}, 8), g = random_tensor({9, 4}, 9).t(), u = random_tensor({4, 9}, 10);
  auto [want_g, want_u] = reference_grads(grad, g, u);
  auto [dg, du] = swiglu_backward(grad, g, u);
  EXPECT_TRUE(dg.is_contiguous());
  EXPECT_ALL_CLOSE(dg, want_g, 1e-14, 1e-13);
  EXPECT_ALL_CLOSE(du, want_u, 1e-14, 1e-13);
  // f32 against the unfused graph's own backward (activation_backward of silu, and mul).
  auto [dg32, du32] = swiglu_backward(f32(grad), f32(g), f32(u));
  EXPECT_ALL_CLOSE(dg32, activation_backward(ActivationGrad::Silu, mul(f32(grad), f32(u)), f32(g)), 1e-7, 1e-6);
  EXPECT_ALL_CLOSE(du32, mul(f32(grad), silu(f32(g))), 1e-7, 1e-6);
}

TEST(Swiglu, BackwardComputesOnlyWhatIsAsked) {
  Tensor grad = random_tensor({3, 5}, 11), g = random_tensor({3, 5}, 12), u = random_tensor({3, 5}, 13);
  auto [all_g, all_u] = swiglu_backward(grad, g, u);
  auto [only_g, no_u] = swiglu_backward(grad, g, u, true, false);
  EXPECT_FALSE(no_u.defined());
  EXPECT_ALL_CLOSE(only_g, all_g, 0, 0);
  auto [no_g, only_u] = swiglu_backward(grad, g, u.t().contiguous().t(), false, true);
  EXPECT_FALSE(no_g.defined());
  EXPECT_ALL_CLOSE(only_u, all_u, 0, 0);
  auto [none_g, none_u] = swiglu_backward(grad, g, u, false, false);
  EXPECT_FALSE(none_g.defined() || none_u.defined());
}

// The scaled form: swiglu then mul by a scale a row, bit for bit in f64 and f32; its gradients
// are swiglu_backward's for grad * scale side by side, and the scale's each row's sum of
// grad * swiglu. gate and up are the halves of one [R, 2D] tensor, as the experts' are.
TEST(Swiglu, ScaledIsSwigluTimesARowScale) {
  for (DType dt : {DType::F64, DType::F32}) {
    SCOPED_TRACE(dtype_name(dt));
    for (auto [r, d, seed] : {std::tuple<int64_t, int64_t, uint64_t>{7, 5, 20}, {300, 130, 30}}) {
      const Tensor both = random_tensor({r, 2 * d}, seed, dt);
      const Tensor g = both.narrow(1, 0, d), u = both.narrow(1, d, d);
      const Tensor scale = random_tensor({r, 1}, seed + 1, dt);
      const Tensor grad = random_tensor({d, r}, seed + 2, dt).t();  // made contiguous inside
      EXPECT_ALL_CLOSE(swiglu_scaled(g, u, scale), mul(swiglu(g, u), scale), 0, 0);
      const SwigluScaledGrads got = swiglu_scaled_backward(grad, g, u, scale, true, true);
      auto [dg, du] = swiglu_backward(mul(grad, scale), g, u);
      ASSERT_EQ(got.gate_up.shape(), Shape({r, 2 * d}));
      EXPECT_ALL_CLOSE(got.gate_up.narrow(1, 0, d), dg, 0, 0);
      EXPECT_ALL_CLOSE(got.gate_up.narrow(1, d, d), du, 0, 0);
      const double tol = dt == DType::F64 ? 1e-13 : 1e-5;
      EXPECT_ALL_CLOSE(got.scale, sum(mul(grad, swiglu(g, u)), {1}, true), tol, tol);
      const SwigluScaledGrads only_scale = swiglu_scaled_backward(grad, g, u, scale, false, true);
      EXPECT_FALSE(only_scale.gate_up.defined());
      EXPECT_ALL_CLOSE(only_scale.scale, got.scale, 0, 0);
      const SwigluScaledGrads only_rows = swiglu_scaled_backward(grad, g, u, scale, true, false);
      EXPECT_FALSE(only_rows.scale.defined());
      EXPECT_ALL_CLOSE(only_rows.gate_up, got.gate_up, 0, 0);
    }
  }
  // No columns: the scale's gradient is a sum over nothing.
  const SwigluScaledGrads empty_rows =
      swiglu_scaled_backward(zeros({3, 0}), zeros({3, 0}), zeros({3, 0}), ones({3, 1}), true, true);
  EXPECT_EQ(empty_rows.gate_up.shape(), Shape({3, 0}));
  EXPECT_ALL_CLOSE(empty_rows.scale, zeros({3, 1}), 0, 0);
  expect_error([] { swiglu_scaled(zeros({2, 3}), zeros({2, 3}), zeros({3, 1})); },
               "swiglu_scaled: gate [2, 3] and scale [3, 1]: expected gate [R, D] and scale [R, 1]");
  expect_error([] { swiglu_scaled(zeros({2, 3}), zeros({2, 3}), zeros({2, 1}, DType::F64)); },
               "swiglu_scaled: expected tensors of the same dtype");
  expect_error(
      [] { swiglu_scaled_backward(zeros({2, 4}), zeros({2, 3}), zeros({2, 3}), zeros({2, 1}), true, true); },
      "swiglu_scaled_backward: grad shape [2, 4] differs from gate shape [2, 3]");
}

// bf16 is the f32 op on the same values, rounded once: equal bit for bit to the f32 result
// rounded to bf16, and so within 1e-2 of it.
void expect_rounded_f32(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(got, want.to(DType::BF16), 0, 0);
  EXPECT_ALL_CLOSE(f32(got), want, 1e-2, 1e-2);
}

TEST(Swiglu, Bf16IsF32ArithmeticRoundedOnce) {
  Tensor g = random_tensor({9, 5}, 14, DType::BF16).t();  // odd sizes, non-contiguous
  Tensor u = random_tensor({5, 9}, 15, DType::BF16);
  Tensor grad = random_tensor({5, 9}, 16, DType::BF16);
  expect_rounded_f32(swiglu(g, u), swiglu(f32(g), f32(u)));
  auto [dg, du] = swiglu_backward(grad, g, u);
  auto [want_g, want_u] = swiglu_backward(f32(grad), f32(g), f32(u));
  expect_rounded_f32(dg, want_g);
  expect_rounded_f32(du, want_u);
  // Fused, bf16 rounds once where silu then mul rounds twice: still within bf16 precision.
  EXPECT_ALL_CLOSE(f32(swiglu(g, u)), f32(unfused(g, u)), 1e-2, 1e-2);

  // The scaled form: the f32 arithmetic rounded once; the scale's gradient, an f64 sum, within
  // bf16 precision of the f32 one.
  const Tensor g2 = g.t(), u2 = u.t(), grad2 = grad.t(), scale = random_tensor({9, 1}, 17, DType::BF16);
  expect_rounded_f32(swiglu_scaled(g2, u2, scale), swiglu_scaled(f32(g2), f32(u2), f32(scale)));
  const SwigluScaledGrads got = swiglu_scaled_backward(grad2, g2, u2, scale, true, true);
  const SwigluScaledGrads want =
      swiglu_scaled_backward(f32(grad2), f32(g2), f32(u2), f32(scale), true, true);
  expect_rounded_f32(got.gate_up, want.gate_up);
  EXPECT_ALL_CLOSE(f32(got.scale), want.scale, 1e-2, 1e-2);
}

}  // namespace
}  // namespace moegrad
