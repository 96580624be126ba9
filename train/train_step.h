// One optimizer step of an OLMoE model: forward and backward over each micro-batch (gradients
// accumulate, each micro-batch's loss scaled by 1 / micro-batches), the gradient reduction of
// data parallelism, global-norm clipping, then AdamW. The loss is CE + lb_coef * LB +
// z_coef * Z; each term is reported.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/packed_loader.h"
#include "moe/olmoe.h"
#include "train/adamw.h"
#include "train/config.h"

namespace moegrad::train {

struct StepOptions {
  double lr = 0;
  double clip = 0;  // 0: no clipping
  MoeLossWeights loss_weights;
  bool language_losses = true;  // per-language CE of each step (one more pass over the logits)
  // Called once after the last backward with every trainable parameter: the one place where
  // data-parallel ranks will all-reduce their gradients. Empty on one process.
  std::function<void(const std::vector<Variable>&)> reduce_gradients;
};

struct LanguageLoss {
  double ce_sum = 0;  // sum over sequences of each sequence's mean next-token CE
  int64_t sequences = 0;
  double mean() const { return sequences ? ce_sum / double(sequences) : 0.0; }
};

struct StepStats {
  double loss = 0, ce = 0, lb = 0, z = 0;  // means over the micro-batches; lb, z unweighted
  double grad_norm = 0;                    // before clipping
  int64_t tokens = 0;                      // tokens seen (inputs, all micro-batches)
  std::map<std::string, LanguageLoss> languages;
};

// Thrown, before any parameter changes, when the loss or the gradient norm is NaN or infinite.
class NonFiniteLoss : public Error {
 public:
  using Error::Error;
};

// lr (the peak), clipping and loss weights as the config's [train] section says.
StepOptions step_options(const TrainConfig& config);

StepStats train_step(const OlmoeForCausalLM& model, AdamW& optimizer,
                     const std::vector<data::Batch>& micro_batches, const StepOptions& options);

// Mean next-token cross-entropy of each row of `input_ids` [B, T] given the model's logits
// [B, T, V] (no gradient).
std::vector<double> sequence_losses(const Tensor& logits, const Tensor& input_ids);

}  // namespace moegrad::train
