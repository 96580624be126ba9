// The training run of `moegrad train`: builds the model (new, or continued from an HF directory
// or from the run's own latest checkpoint), the freeze mask, AdamW and the packed loader from a
// TrainConfig, then steps to train.steps, evaluating held-out loss per language, checkpointing
// and logging. Everything lands in the run directory (run.dir/run.name):
//   config.ini         the resolved config
//   trainable.json     exact trainable / total parameter counts and the freeze mask
//   metrics.jsonl      one line per step and one per evaluation
//   train.log          what was printed
//   checkpoints/       step-<8 digits>/ (see train/checkpoint.h); the last run.keep are kept
//   model/             the final model, an HF directory
//   summary.json       final losses, evaluation, time and peak memory
#pragma once
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/io/directory_lock.h"
#include "data/packed_loader.h"
#include "train/adamw.h"
#include "train/config.h"
#include "train/freeze_mask.h"
#include "train/train_step.h"

namespace moegrad::train {

struct StepReport {
  int64_t step = 0, total_steps = 0;
  double lr = 0;
  double seconds = 0;  // wall time of the step
  StepStats stats;
};

struct LanguageEval {
  double loss = 0;  // mean next-token CE over the held-out tokens
  int64_t tokens = 0;
  // Nats summed over the tokens / (ln 2 x the bytes of text they stand for): comparable across
  // languages and tokenizers, unlike the per-token loss. 0 without data.tokenizer.
  double bits_per_byte = 0;
};

struct TrainerCallbacks {
  std::function<void(const StepReport&)> on_step;
  std::function<void(const std::string&)> on_message;  // also written to train.log
};

class Trainer {
 public:
  // resume: continue the run in the run directory from its latest checkpoint (bit-identical on
  // the CPU); without it the run directory must not hold an earlier run.
  Trainer(TrainConfig config, bool resume, TrainerCallbacks callbacks = {});
  ~Trainer();

  // Trains until train.steps. A NaN or infinite loss stops the run with an error before any
  // parameter changes; the last checkpoint is left as it was.
  void run();
  // Held-out loss per language (the same sequences every time), routing over every expert.
  std::map<std::string, LanguageEval> evaluate();
  // Routing statistics of eval.routing_tokens held-out tokens per language and their analysis
  // (eval/routing_analysis.h), written to routing/step-N/ and summarised in metrics.jsonl.
  void snapshot_routing();

  const OlmoeForCausalLM& model() const { return *model_; }
  const FreezeMask& mask() const { return mask_; }
  int64_t step() const { return step_; }
  TrainableCount trainable() const;

 private:
  void say(const std::string& line);
  // Moves the model to the device, applies the freeze mask, makes the optimizer.
  void setup_training();
  void setup_data();
  void check_run_dir(bool resume);
  // Figures of each per-layer routing metric across the run's snapshots so far, in
  // runs/<name>/routing/figures/.
  void write_routing_dynamics();
  // Stops the [profile] window's profile and writes runs/<name>/profile/.
  void write_profile(int64_t last_step);
  void resume_from_checkpoint();
  void write_checkpoint();
  void log_metrics(const nlohmann::json& line);
  void set_training_hooks(bool training);

  TrainConfig config_;
  Device device_;  // train.device, resolved
  TrainerCallbacks callbacks_;
  std::string run_dir_;
  std::optional<DirectoryLock> lock_;  // on run_dir_, for the trainer's lifetime
  std::unique_ptr<OlmoeForCausalLM> model_;
  FreezeMask mask_;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<data::PackedLoader> loader_;
  data::LoaderOptions loader_options_;
  std::map<std::string, std::string> heldout_shards_;  // language -> path
  std::vector<int64_t> token_bytes_;  // bytes of text per token id (with data.tokenizer)
  int64_t step_ = 0;
  // The last step evaluated and checkpointed: a run resumed from its final checkpoint does
  // neither again.
  int64_t evaluated_step_ = -1;
  int64_t checkpointed_step_ = -1;
  std::string resume_changes_;  // what a resumed run changed in the config, for the log
  std::ofstream log_;
};

}  // namespace moegrad::train
