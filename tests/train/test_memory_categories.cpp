// A masked training step files its memory where it belongs: the model's parameters as weights,
// the trained parameters' gradients as gradients, AdamW's moments as optimizer state, exactly.
#include <set>

#include "core/random.h"
#include "core/storage.h"
#include "moe/olmoe.h"
#include "tests/testing.h"
#include "tests/tiny_olmoe.h"
#include "train/adamw.h"
#include "train/freeze_mask.h"
#include "train/train_step.h"

namespace moegrad::train {
namespace {

int64_t bytes_of(const MemoryReport& r, MemoryCategory c) { return r.current[size_t(c)]; }

TEST(MemoryCategories, AMaskedTrainingStepFilesWeightsGradientsAndOptimizerState) {
  const Device cpu = Device::cpu();
  const MemoryReport base = memory_report(cpu);
  const OlmoeConfig c = testing::tiny_olmoe_config(61, 4, 2, 32);
  Generator gen(1);
  const auto owned = testing::tiny_olmoe(c, gen);
  OlmoeForCausalLM& model = *owned;
  const NamedParameters params = model.named_parameters();
  int64_t weight_bytes = 0;
  std::set<const Storage*> storages;
  for (const auto& [name, p] : params)
    if (storages.insert(p.data().storage().get()).second)
      weight_bytes += int64_t(p.data().storage()->nbytes());
  const MemoryReport built = memory_report(cpu);
  EXPECT_EQ(bytes_of(built, MemoryCategory::Weights) - bytes_of(base, MemoryCategory::Weights),
            weight_bytes);

  const FreezeMask mask = FreezeMask::build(
      parse_freeze_rules({"experts -1:1,2", "train model.layers.1.mlp.gate.weight"}), params);
  mask.apply(params);
  const int64_t trained_bytes = mask.count(params).trainable * int64_t(sizeof(float));
  ASSERT_GT(trained_bytes, 0);
  AdamW optimizer(params, mask, AdamWOptions{});
  StepOptions options;
  options.lr = 1e-3;
  Generator data(2);
  std::vector<data::Batch> micro(1);
  micro[0].input_ids = randint(0, c.vocab_size, {2, 9}, data);
  micro[0].languages = {"en", "de"};
  train_step(model, optimizer, micro, options);

  const MemoryReport after = memory_report(cpu);
  EXPECT_EQ(bytes_of(after, MemoryCategory::Weights) - bytes_of(base, MemoryCategory::Weights),
            weight_bytes);
  EXPECT_EQ(bytes_of(after, MemoryCategory::Gradients) - bytes_of(base, MemoryCategory::Gradients),
            trained_bytes);
  EXPECT_EQ(bytes_of(after, MemoryCategory::OptimizerState) -
                bytes_of(base, MemoryCategory::OptimizerState),
            2 * trained_bytes);
}

}  // namespace
}  // namespace moegrad::train
