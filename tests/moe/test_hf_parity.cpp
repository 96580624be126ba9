// Parity with HuggingFace transformers on the committed fixtures (tests/reference/): the same
// weights and batch must give the same logits, losses and gradients of every parameter.
#include <cmath>
#include <memory>

#include "core/io/safetensors.h"
#include "moe/checkpoint.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

const std::string kFixtures = std::string(MOEGRAD_SOURCE_DIR) + "/tests/reference/olmoe/";

// max |a - e| / max |e|: single entries of a gradient can be ~0, so relative error is taken
// against the tensor's scale.
double scaled_error(const Tensor& actual, const Tensor& expected) {
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::fabs(a[i] - e[i]));
    scale = std::max(scale, std::fabs(e[i]));
  }
  return scale > 0 ? err / scale : err;
}

class HfParity : public ::testing::TestWithParam<std::string> {};

TEST_P(HfParity, LogitsLossesAndEveryGradientMatchTransformers) {
  const std::string dir = kFixtures + GetParam() + "/";
  auto model = load_olmoe(dir);
  SafetensorsFile expected(dir + "expected.safetensors");
  Tensor ids = expected.tensor("input_ids"), mask = expected.tensor("attention_mask");
  LossOutput out = model->loss(ids, MoeLossWeights::hf(model->config()), expected.tensor("labels"), mask);

  // Logits of real tokens (moegrad does not mask attention; right padding needs none for them).
  Tensor logits = out.output.hidden.data(), want = expected.tensor("logits");
  std::vector<int64_t> m = mask.to(DType::I64).to_vector<int64_t>();
  for (int64_t b = 0; b < ids.size(0); ++b)
    for (int64_t t = 0; t < ids.size(1); ++t)
      if (m[b * ids.size(1) + t]) {
        ASSERT_LT(scaled_error(logits.select(0, b).select(0, t), want.select(0, b).select(0, t)), 1e-4)
            << "logits at batch " << b << " position " << t;
      }

  EXPECT_NEAR(out.loss.data().item(), expected.tensor("loss").item(), 1e-4 * std::fabs(expected.tensor("loss").item()));
  EXPECT_NEAR(out.ce.data().item(), expected.tensor("ce_loss").item(), 1e-4 * std::fabs(expected.tensor("ce_loss").item()));
  double aux = out.aux.data().item() / model->config().router_aux_loss_coef;
  EXPECT_NEAR(aux, expected.tensor("aux_loss").item(), 1e-4 * std::fabs(expected.tensor("aux_loss").item()));

  out.loss.backward();
  // Parameters carry the HF names, experts one by one, so each gradient has its own fixture.
  int checked = 0;
  for (const auto& [name, p] : model->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_LT(scaled_error(p.grad(), expected.tensor("grad." + name)), 1e-4) << name;
    ++checked;
  }
  int expected_grads = 0;
  for (const std::string& n : expected.names()) expected_grads += n.rfind("grad.", 0) == 0;
  EXPECT_EQ(checked, expected_grads);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfParity, ::testing::Values("base", "gqa_norm"));

}  // namespace
}  // namespace moegrad
