#include "train/setup.h"

#include "core/random.h"

namespace moegrad::train {

std::unique_ptr<OlmoeForCausalLM> new_model(const TrainConfig& config) {
  Generator gen(config.model.seed);
  InitOptions init;
  init.gen = &gen;
  init.std = config.model.config.initializer_range;
  return std::make_unique<OlmoeForCausalLM>(config.model.config, init);
}

FreezeMask apply_freeze_mask(const TrainConfig& config, const NamedParameters& params) {
  FreezeMask mask = FreezeMask::build(parse_freeze_rules(config.freeze.rules), params);
  mask.apply(params);
  return mask;
}

}  // namespace moegrad::train
