// Training checkpoints: `<checkpoints>/step-<8 digits>/` holds an HF model directory
// (config.json, model.safetensors: loads in transformers as is) plus the trainer state
// (optimizer.safetensors: AdamW moments of the trainable parameters and rows only;
// trainer_state.json: step, loader position, freeze mask, and the size and FNV-1a checksum of
// every file). A checkpoint is written into a temporary directory that is renamed into place
// only when every file is on disk, so a crash leaves the previous checkpoint as it was; one
// whose files do not match their recorded sizes and checksums is refused.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/olmoe.h"

namespace moegrad::train {

struct Checkpoint {
  std::string dir;
  std::unique_ptr<OlmoeForCausalLM> model;
  std::vector<std::pair<std::string, Tensor>> optimizer_state;
  int64_t step = 0;
  nlohmann::json state;    // trainer_state.json: what the trainer saved, plus "step" and "files"
  std::string state_file;  // its path, for messages
};

// Writes the checkpoint of `step` and returns its directory.
std::string save_checkpoint(const std::string& checkpoints_dir, int64_t step,
                            const OlmoeForCausalLM& model,
                            const std::vector<std::pair<std::string, Tensor>>& optimizer_state,
                            const nlohmann::json& state);

// The directory of the newest checkpoint (highest step) in `checkpoints_dir`, or "" if none.
// Unfinished temporary directories are ignored.
std::string latest_checkpoint(const std::string& checkpoints_dir);

// Verifies every file's size and checksum, then loads; errors name the file and the problem.
Checkpoint load_checkpoint(const std::string& dir);

// Deletes all but the newest `keep` checkpoints.
void prune_checkpoints(const std::string& checkpoints_dir, int64_t keep);

// Writes the model alone as an HF directory, atomically (temporary directory + rename), with a
// copy of `tokenizer` (a tokenizer.json; empty: none) so that the directory is usable alone.
void save_model_atomically(const OlmoeForCausalLM& model, const std::string& dir,
                           const std::string& tokenizer = "");

}  // namespace moegrad::train
