#include "train/setup.h"

#include <fstream>

#include "core/random.h"
#include "data/tokenizer.h"

namespace moegrad::train {

std::optional<int64_t> document_separator(const DataSection& data) {
  if (data.eos_id >= 0) return data.eos_id;
  if (data.tokenizer.empty()) return std::nullopt;
  const std::optional<int32_t> id =
      data::Tokenizer::from_file(data.tokenizer).token_to_id("<|endoftext|>");
  return id ? std::optional<int64_t>(*id) : std::nullopt;
}

std::unique_ptr<OlmoeForCausalLM> new_model(const TrainConfig& config) {
  Generator gen(config.model.seed);
  InitOptions init;
  init.gen = &gen;
  init.std = config.model.config.initializer_range;
  // OLMoE's default special ids belong to its own 50k vocabulary: a new model's EOS is the
  // run's document separator (what scoring conditions a text on), and it has no padding id
  // outside its vocabulary.
  OlmoeConfig c = config.model.config;
  c.eos_token_id = document_separator(config.data);
  if (c.pad_token_id && *c.pad_token_id >= c.vocab_size) c.pad_token_id.reset();
  return std::make_unique<OlmoeForCausalLM>(c, init);
}

void place_model(const TrainConfig& config, const OlmoeForCausalLM& model, Device device) {
  // Converted where it was built: a bf16 model never occupies the device in f32 as well.
  model.to(config.train.dtype());
  model.to(device);
  model.set_expert_gemm(expert_gemm_from_string(config.train.expert_gemm));
}

Adaptation adaptation(const TrainConfig& config, const OlmoeConfig& model) {
  nlohmann::json analysis = nlohmann::json::object();
  if (!config.adapt.routing.empty()) {
    std::ifstream in(config.adapt.routing);
    MOEGRAD_CHECK(in, config.source, ": adapt.routing: cannot read ", config.adapt.routing);
    analysis = nlohmann::json::parse(in, nullptr, false);
    MOEGRAD_CHECK(!analysis.is_discarded() && analysis.is_object(), config.source,
                  ": adapt.routing: ", config.adapt.routing, " is not a routing.json");
  }
  try {
    return resolve_adaptation(config.adapt, model.num_hidden_layers, model.num_experts, analysis);
  } catch (const std::exception& e) {
    throw Error(config.source + ": " + e.what());
  }
}

FreezeMask apply_freeze_mask(const TrainConfig& config, const OlmoeForCausalLM& model) {
  std::vector<std::string> rules = config.freeze.rules;
  if (config.adapt.method != "none") rules = adaptation(config, model.config()).rules;
  const NamedParameters params = model.named_parameters();
  FreezeMask mask = FreezeMask::build(parse_freeze_rules(rules), params);
  mask.apply(params);
  return mask;
}

}  // namespace moegrad::train
