// A training step over several micro-batches under bf16: each parameter's gradients are summed
// in f32, not in bf16.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/ops/binary.h"
#include "core/random.h"
#include "moe/olmoe.h"
#include "tests/testing.h"
#include "tests/tiny_olmoe.h"
#include "train/adamw.h"
#include "train/freeze_mask.h"
#include "train/train_step.h"

namespace moegrad::train {
namespace {

// The tiny model in bf16 with the last layer's experts 1 and 2 and a router trained.
struct Bf16Training {
  std::unique_ptr<OlmoeForCausalLM> model;
  NamedParameters params;
  std::unique_ptr<AdamW> optimizer;

  explicit Bf16Training(const std::vector<std::string>& rules = {
                            "experts -1:1,2", "train model.layers.1.mlp.gate.weight"}) {
    Generator gen(5);
    model = testing::tiny_olmoe(testing::tiny_olmoe_config(61, 4, 2, 32), gen);
    model->to(DType::BF16);
    params = model->named_parameters();
    const FreezeMask mask = FreezeMask::build(parse_freeze_rules(rules), params);
    mask.apply(params);
    optimizer = std::make_unique<AdamW>(params, mask, AdamWOptions{});
  }
};

// `count` micro-batches of two random sequences, trained in one step at lr 1e-2.
std::vector<data::Batch> train_on_micro_batches(Bf16Training& step, size_t count, uint64_t seed,
                                               StepOptions& options) {
  Generator data(seed);
  std::vector<data::Batch> micro(count);
  for (data::Batch& m : micro) {
    m.input_ids = randint(0, 61, {2, 9}, data);
    m.languages = {"en", "de"};
  }
  options.lr = 1e-2;
  train_step(*step.model, *step.optimizer, micro, options);
  return micro;
}

TEST(TrainStep, Bf16GradientsOfMicroBatchesAreSummedInF32) {
  Bf16Training step, reference;
  StepOptions options;
  const std::vector<data::Batch> micro = train_on_micro_batches(step, 3, 7, options);

  // By hand: each micro-batch's bf16 gradients, widened and summed in f32, then one AdamW step.
  std::map<std::string, Tensor> sums;
  for (const data::Batch& m : micro) {
    reference.model->zero_grad();
    mul_scalar(reference.model->loss(m.input_ids, options.loss_weights).loss, 1.0 / 3).backward();
    for (const auto& [name, p] : reference.params) {
      if (!p.grad().defined()) continue;
      EXPECT_EQ(p.grad().dtype(), DType::BF16) << name;
      const Tensor g = p.grad().to(DType::F32);
      sums[name] = sums.count(name) ? add(sums[name], g) : g;
    }
  }
  ASSERT_FALSE(sums.empty());
  for (const auto& [name, p] : reference.params)
    if (sums.count(name)) p.impl()->grad = sums[name];
  reference.optimizer->step(options.lr);

  for (size_t i = 0; i < step.params.size(); ++i) {
    const auto& [name, p] = step.params[i];
    EXPECT_EQ(p.data().to_vector<double>(), reference.params[i].second.data().to_vector<double>())
        << name;
    if (sums.count(name)) {
      EXPECT_EQ(p.grad().dtype(), DType::F32) << name;
    } else {
      EXPECT_FALSE(p.grad().defined()) << name;  // no micro-batch gave it a gradient
    }
  }
}

// A zero router scores every expert alike and top-2 takes experts 0 and 1: expert 3 trains but
// no micro-batch reaches it, so it ends the step without a gradient and unchanged.
TEST(TrainStep, AnExpertNoMicroBatchReachesKeepsNoGradient) {
  Bf16Training step({"experts -1:1,3"});
  const std::string gate = "model.layers.1.mlp.gate.weight";
  const std::string idle = "model.layers.1.mlp.experts.3.down_proj.weight";
  const std::string used = "model.layers.1.mlp.experts.1.down_proj.weight";
  std::map<std::string, Variable> by_name(step.params.begin(), step.params.end());
  by_name.at(gate).data().zero_();
  const std::vector<double> before = by_name.at(idle).data().to_vector<double>();
  StepOptions options;
  train_on_micro_batches(step, 2, 8, options);
  EXPECT_TRUE(by_name.at(used).grad().defined());
  EXPECT_FALSE(by_name.at(idle).grad().defined());
  EXPECT_EQ(by_name.at(idle).data().to_vector<double>(), before);
}

// The same, with expert 3 the only thing that trains: no micro-batch's loss reaches a trained
// parameter, and the step is a step with no gradient, not an error.
TEST(TrainStep, AStepThatReachesNoTrainedParameterChangesNothing) {
  Bf16Training step({"experts -1:3"});
  const std::string idle = "model.layers.1.mlp.experts.3.down_proj.weight";
  std::map<std::string, Variable> by_name(step.params.begin(), step.params.end());
  by_name.at("model.layers.1.mlp.gate.weight").data().zero_();
  const std::vector<double> before = by_name.at(idle).data().to_vector<double>();
  StepOptions options;
  Generator data(8);
  data::Batch batch{randint(0, 61, {2, 9}, data), {"en", "de"}};
  const StepStats s = train_step(*step.model, *step.optimizer, {batch, batch}, options);
  EXPECT_GT(s.loss, 0);
  EXPECT_EQ(s.grad_norm, 0);
  EXPECT_FALSE(by_name.at(idle).grad().defined());
  EXPECT_EQ(by_name.at(idle).data().to_vector<double>(), before);
}

}  // namespace
}  // namespace moegrad::train
