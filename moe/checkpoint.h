// OLMoE checkpoints in the HuggingFace directory layout: config.json plus model.safetensors or a
// sharded model.safetensors.index.json. Loading accepts the Hub's per-expert tensors and the
// fused layout of transformers v5 (mlp.experts.gate_up_proj [E, 2I, H], gate rows first, and
// mlp.experts.down_proj [E, H, I]); exporting writes the per-expert layout, which every
// transformers version loads.
#pragma once
#include <memory>
#include <string>

#include "moe/olmoe.h"

namespace moegrad {

// Every tensor of the model must be present with the shape the config implies and a float
// dtype (converted to f32); a missing, misshapen or unexpected tensor is an error naming the
// directory, the tensor and what was expected.
std::unique_ptr<OlmoeForCausalLM> load_olmoe(const std::string& dir);

// Writes `dir`/config.json and `dir`/model.safetensors (f32), each atomically; creates `dir`.
void save_olmoe(const OlmoeForCausalLM& model, const std::string& dir);

}  // namespace moegrad
