// What a run or a benchmark builds from the config before it steps: a new model and the
// freeze mask in force.
#pragma once
#include <memory>

#include "moe/olmoe.h"
#include "train/config.h"
#include "train/freeze_mask.h"

namespace moegrad::train {

// A new model of the [model] shape, initialised from model.seed (on the CPU).
std::unique_ptr<OlmoeForCausalLM> new_model(const TrainConfig& config);

// The [freeze] rules resolved over `params` and applied: frozen parameters stop requiring grad.
FreezeMask apply_freeze_mask(const TrainConfig& config, const NamedParameters& params);

}  // namespace moegrad::train
