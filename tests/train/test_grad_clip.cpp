#include <cmath>
#include <limits>

#include "core/ops/binary.h"
#include "tests/testing.h"
#include "train/grad_clip.h"

namespace moegrad::train {
namespace {

using testing::random_tensor;

void set_grad(const Variable& p, const Tensor& g) { p.impl()->grad = g; }

// w [4, 3] whole, emb [6, 3] rows {1, 2, 4}, norm [3] frozen, b [2] whole without gradient.
struct Model {
  NamedParameters params;
  FreezeMask mask;
  explicit Model(uint64_t seed, DType dtype = DType::F32) {
    for (const auto& [name, shape] :
         {std::pair<std::string, Shape>{"w", {4, 3}}, {"emb", {6, 3}}, {"norm", {3}}, {"b", {2}}})
      params.emplace_back(name, Variable(zeros(shape, dtype), true));
    mask = FreezeMask::build(parse_freeze_rules({"train {w,b}; rows emb:1-2,4"}), params);
    for (size_t i = 0; i < 3; ++i)
      set_grad(params[i].second, random_tensor(params[i].second.shape(), seed + i, dtype));
  }
  const Tensor& grad(size_t i) const { return params[i].second.grad(); }
};

// Sum of squares in f64 over w, rows 1, 2, 4 of emb; not norm (frozen), not b (no gradient).
double hand_norm(const Model& m) {
  double s = 0;
  for (double v : m.grad(0).to_vector<double>()) s += v * v;
  const std::vector<double> emb = m.grad(1).to_vector<double>();
  for (int64_t r : {1, 2, 4})
    for (int64_t c = 0; c < 3; ++c) s += emb[size_t(r * 3 + c)] * emb[size_t(r * 3 + c)];
  return std::sqrt(s);
}

TEST(GradClip, NormCountsTrainedGradientsOnly) {
  const Model m(1);
  EXPECT_NEAR(grad_norm(m.params, m.mask), hand_norm(m), 1e-12 * hand_norm(m));
  // No gradient anywhere: 0.
  Model none(1);
  for (const auto& [name, p] : none.params) set_grad(p, Tensor());
  EXPECT_EQ(grad_norm(none.params, none.mask), 0.0);
}

// A step's form, over the optimizer's own list, is the same value bit for bit, in f32 and bf16.
TEST(GradClip, TheOptimizersNormIsTheSameValue) {
  for (DType dtype : {DType::F32, DType::BF16}) {
    const Model m(7, dtype);
    const AdamW optimizer(m.params, m.mask);
    const double by_name = grad_norm_squared(m.params, m.mask).item();
    EXPECT_EQ(grad_norm_squared(optimizer).item(), by_name) << dtype_name(dtype);
    EXPECT_NEAR(std::sqrt(by_name), hand_norm(m), 1e-6 * hand_norm(m)) << dtype_name(dtype);
  }
  Model none(1);
  for (const auto& [name, p] : none.params) set_grad(p, Tensor());
  EXPECT_EQ(grad_norm_squared(AdamW(none.params, none.mask)).item(), 0.0);
}

TEST(GradClip, NormIsComputedInF64) {
  // Squares of 1e20 overflow f32; the norm does not.
  Model m(1);
  set_grad(m.params[0].second, full({4, 3}, 1e20));
  set_grad(m.params[1].second, zeros({6, 3}));
  EXPECT_NEAR(grad_norm(m.params, m.mask), std::sqrt(12.0) * double(1e20f), 1e8);
}

TEST(GradClip, ScalesEveryTrainableGradient) {
  Model m(2, DType::F64);
  const Tensor g0 = m.grad(0).clone(), g1 = m.grad(1).clone(), g2 = m.grad(2).clone();
  const double norm = hand_norm(m);
  const double returned = clip_grad_norm(m.params, m.mask, norm / 4);
  EXPECT_NEAR(returned, norm, 1e-12 * norm);
  const double coef = (norm / 4) / (returned + 1e-6);
  EXPECT_ALL_CLOSE(m.grad(0), mul(g0, scalar_tensor(coef, DType::F64)), 0, 0);
  EXPECT_ALL_CLOSE(m.grad(1), mul(g1, scalar_tensor(coef, DType::F64)), 0, 0);
  EXPECT_ALL_CLOSE(m.grad(2), g2, 0, 0);  // frozen: untouched
  EXPECT_NEAR(grad_norm(m.params, m.mask), norm / 4, 1e-6);
}

TEST(GradClip, SmallNormsAndDisabledClippingLeaveGradientsAlone) {
  Model m(3);
  const Tensor g0 = m.grad(0).clone();
  const double norm = hand_norm(m);
  EXPECT_NEAR(clip_grad_norm(m.params, m.mask, norm * 2), norm, 1e-12 * norm);
  EXPECT_ALL_CLOSE(m.grad(0), g0, 0, 0);
  EXPECT_NEAR(clip_grad_norm(m.params, m.mask, 0.0), norm, 1e-12 * norm);
  EXPECT_NEAR(clip_grad_norm(m.params, m.mask, -1.0), norm, 1e-12 * norm);
  EXPECT_ALL_CLOSE(m.grad(0), g0, 0, 0);
}

TEST(GradClip, NonFiniteNormIsReturnedAndNothingScaled) {
  Model m(4);
  Tensor g1 = m.grad(1);
  g1.select(0, 2).fill_(std::numeric_limits<double>::infinity());
  const Tensor g0 = m.grad(0).clone();
  EXPECT_TRUE(std::isinf(clip_grad_norm(m.params, m.mask, 1.0)));
  EXPECT_ALL_CLOSE(m.grad(0), g0, 0, 0);
  // A NaN in a frozen row does not count.
  Model n(5);
  n.grad(1).select(0, 3).fill_(std::nan(""));
  EXPECT_TRUE(std::isfinite(clip_grad_norm(n.params, n.mask, 1.0)));
  n.grad(1).select(0, 4).fill_(std::nan(""));
  EXPECT_TRUE(std::isnan(grad_norm(n.params, n.mask)));
}

TEST(GradClip, OverTheOptimizersParameters) {
  Model m(6, DType::F64);
  const AdamW opt(m.params, m.mask, AdamWOptions{});
  const double norm = hand_norm(m);
  EXPECT_NEAR(clip_grad_norm(opt, norm / 2), norm, 1e-12 * norm);
  EXPECT_NEAR(grad_norm(m.params, m.mask), norm / 2, 1e-6);
}

}  // namespace
}  // namespace moegrad::train
