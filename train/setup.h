// What a run or a benchmark builds from the config before it steps: a new model and the
// freeze mask in force.
#pragma once
#include <memory>
#include <optional>

#include "moe/olmoe.h"
#include "train/config.h"
#include "train/freeze_mask.h"

namespace moegrad::train {

// The id that separates documents in packed sequences: data.eos_id, else the data.tokenizer's
// <|endoftext|>; none when neither gives one.
std::optional<int64_t> document_separator(const DataSection& data);

// A new model of the [model] shape, initialised from model.seed (on the CPU), with the run's
// document separator as its EOS id.
std::unique_ptr<OlmoeForCausalLM> new_model(const TrainConfig& config);

// Moves the model to `device` and into the run's precision (bf16 parameters under mixed
// precision; the optimizer then keeps their f32 masters), and sets its experts' GEMMs
// (train.expert_gemm). Call before building the optimizer.
void place_model(const TrainConfig& config, const OlmoeForCausalLM& model, Device device);

// The [adapt] section resolved for this model (its routing.json read); errors name the config.
Adaptation adaptation(const TrainConfig& config, const OlmoeConfig& model);

// What trains, resolved over the model's parameters and applied (frozen parameters stop
// requiring grad): the [adapt] method's rules when it has one, else the [freeze] rules.
FreezeMask apply_freeze_mask(const TrainConfig& config, const OlmoeForCausalLM& model);

}  // namespace moegrad::train
