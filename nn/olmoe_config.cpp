#include "nn/olmoe_config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/io/atomic_file.h"
#include "core/io/json_reader.h"

namespace moegrad {
namespace {

using json = nlohmann::json;

// PretrainedConfig's own attributes and the bookkeeping keys save_pretrained writes: they say
// nothing about the architecture, so they are accepted and ignored.
const std::set<std::string>& generic_fields() {
  static const std::set<std::string> fields = {"architectures",
                                               "torch_dtype",
                                               "dtype",
                                               "transformers_version",
                                               "use_cache",
                                               "_name_or_path",
                                               "return_dict",
                                               "output_hidden_states",
                                               "output_attentions",
                                               "torchscript",
                                               "pruned_heads",
                                               "chunk_size_feed_forward",
                                               "is_encoder_decoder",
                                               "is_decoder",
                                               "cross_attention_hidden_size",
                                               "add_cross_attention",
                                               "tie_encoder_decoder",
                                               "id2label",
                                               "label2id",
                                               "num_labels",
                                               "problem_type",
                                               "tokenizer_class",
                                               "prefix",
                                               "sep_token_id",
                                               "decoder_start_token_id",
                                               "task_specific_params",
                                               "finetuning_task",
                                               "max_length",
                                               "min_length",
                                               "do_sample",
                                               "early_stopping",
                                               "num_beams",
                                               "num_beam_groups",
                                               "diversity_penalty",
                                               "temperature",
                                               "top_k",
                                               "top_p",
                                               "typical_p",
                                               "repetition_penalty",
                                               "length_penalty",
                                               "no_repeat_ngram_size",
                                               "encoder_no_repeat_ngram_size",
                                               "bad_words_ids",
                                               "num_return_sequences",
                                               "output_scores",
                                               "return_dict_in_generate",
                                               "forced_bos_token_id",
                                               "forced_eos_token_id",
                                               "remove_invalid_values",
                                               "exponential_decay_length_penalty",
                                               "suppress_tokens",
                                               "begin_suppress_tokens",
                                               "tf_legacy_loss",
                                               "use_bfloat16",
                                               "_attn_implementation",
                                               "_attn_implementation_autoset",
                                               "_commit_hash",
                                               "attention_dropout",
                                               "keys_to_ignore_at_inference"};
  return fields;
}

// Fields HF may leave out keep their defaults; those HF writes as null where unset too.
void read(const JsonReader& r, const char* f, int64_t& out) {
  if (r.has(f)) out = r[f].integer();
}
void read(const JsonReader& r, const char* f, double& out) {
  if (r.has(f)) out = r[f].number();
}
void read(const JsonReader& r, const char* f, bool& out) {
  if (r.has(f)) out = r[f].boolean();
}
void read(const JsonReader& r, const char* f, std::optional<int64_t>& out) {
  if (!r.has(f)) return;
  out.reset();
  if (!r[f].json().is_null()) out = r[f].integer();
}
void read(const JsonReader& r, const char* f, std::optional<double>& out) {
  if (!r.has(f)) return;
  out.reset();
  if (!r[f].json().is_null()) out = r[f].number();
}
bool set(const JsonReader& r, const char* f) { return r.has(f) && !r[f].json().is_null(); }

}  // namespace

void OlmoeConfig::validate(const std::string& source) const {
  auto positive = [&](int64_t v, const char* f) {
    MOEGRAD_CHECK(v > 0, "OlmoeConfig: ", source, ": field '", f, "' must be positive, got ", v);
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(intermediate_size, "intermediate_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(num_key_value_heads, "num_key_value_heads");
  positive(num_experts, "num_experts");
  positive(num_experts_per_tok, "num_experts_per_tok");
  positive(max_position_embeddings, "max_position_embeddings");
  MOEGRAD_CHECK(hidden_size % num_attention_heads == 0 && head_dim() % 2 == 0,
                "OlmoeConfig: ", source, ": hidden_size ", hidden_size,
                " must split into num_attention_heads ", num_attention_heads,
                " heads of even size");
  MOEGRAD_CHECK(num_attention_heads % num_key_value_heads == 0, "OlmoeConfig: ", source,
                ": num_attention_heads ", num_attention_heads,
                " must be a multiple of num_key_value_heads ", num_key_value_heads);
  MOEGRAD_CHECK(num_experts_per_tok <= num_experts, "OlmoeConfig: ", source,
                ": num_experts_per_tok ", num_experts_per_tok, " exceeds num_experts ",
                num_experts);
  // An infinite eps zeroes every normalised activation and an infinite theta every rotation:
  // the model would train on nothing, without an error.
  auto finite = [&](double v, bool ok, const char* f, const char* what) {
    MOEGRAD_CHECK(std::isfinite(v) && ok, "OlmoeConfig: ", source, ": field '", f,
                  "' must be a finite number ", what, ", got ", v);
  };
  finite(rms_norm_eps, rms_norm_eps > 0, "rms_norm_eps", "> 0");
  finite(rope_theta, rope_theta > 0, "rope_theta", "> 0");
  finite(initializer_range, initializer_range >= 0, "initializer_range", ">= 0");
  if (clip_qkv) finite(*clip_qkv, *clip_qkv > 0, "clip_qkv", "> 0 (or null)");
}

OlmoeConfig OlmoeConfig::from_json_string(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error("OlmoeConfig: " + source + ": invalid JSON: " + e.what());
  }
  MOEGRAD_CHECK(j.is_object(), "OlmoeConfig: ", source, ": top level must be a JSON object");
  const JsonReader r(j, "OlmoeConfig: " + source);
  MOEGRAD_CHECK(r.has("model_type"), "OlmoeConfig: ", source,
                ": missing required field 'model_type'");
  const std::string model_type = r["model_type"].string();
  if (model_type != "olmoe") r["model_type"].fail("must be \"olmoe\", got \"" + model_type + "\"");

  OlmoeConfig c;
  read(r, "vocab_size", c.vocab_size);
  read(r, "hidden_size", c.hidden_size);
  read(r, "intermediate_size", c.intermediate_size);
  read(r, "num_hidden_layers", c.num_hidden_layers);
  read(r, "num_attention_heads", c.num_attention_heads);
  c.num_key_value_heads = c.num_attention_heads;
  if (set(r, "num_key_value_heads")) read(r, "num_key_value_heads", c.num_key_value_heads);
  read(r, "num_experts", c.num_experts);
  read(r, "num_experts_per_tok", c.num_experts_per_tok);
  read(r, "norm_topk_prob", c.norm_topk_prob);
  read(r, "rope_theta", c.rope_theta);
  read(r, "max_position_embeddings", c.max_position_embeddings);
  read(r, "rms_norm_eps", c.rms_norm_eps);
  read(r, "clip_qkv", c.clip_qkv);
  read(r, "router_aux_loss_coef", c.router_aux_loss_coef);
  read(r, "output_router_logits", c.output_router_logits);
  read(r, "initializer_range", c.initializer_range);
  read(r, "eos_token_id", c.eos_token_id);
  read(r, "pad_token_id", c.pad_token_id);
  read(r, "bos_token_id", c.bos_token_id);

  if (r.has("hidden_act") && r["hidden_act"].string() != "silu")
    r["hidden_act"].fail("must be \"silu\" (the only activation supported)");
  if (r.has("attention_bias") && r["attention_bias"].boolean())
    r["attention_bias"].fail("must be false (biases are not supported)");
  if (r.has("tie_word_embeddings") && r["tie_word_embeddings"].boolean())
    r["tie_word_embeddings"].fail("must be false (lm_head is not tied)");
  if (set(r, "rope_scaling")) r["rope_scaling"].fail("must be null (rope scaling is not supported)");
  if (set(r, "rope_parameters")) {
    const JsonReader rp = r["rope_parameters"];
    rp.expect(rp.json().is_object(), "an object");
    for (const auto& [key, value] : rp.json().items()) {
      if (key == "rope_theta")
        c.rope_theta = rp[key].number();
      else if (key == "rope_type" && value != "default")
        rp[key].fail("must be \"default\", got " + value.dump());
      else if (key != "rope_type")
        rp[key].fail("is not supported");
    }
  }
  if (set(r, "head_dim") && r["head_dim"].integer() != c.head_dim())
    r["head_dim"].fail("must equal hidden_size / num_attention_heads = " +
                       std::to_string(c.head_dim()));

  static const std::set<std::string> own = {"model_type",           "vocab_size",
                                            "hidden_size",          "intermediate_size",
                                            "num_hidden_layers",    "num_attention_heads",
                                            "num_key_value_heads",  "num_experts",
                                            "num_experts_per_tok",  "norm_topk_prob",
                                            "rope_theta",           "rope_parameters",
                                            "rope_scaling",         "max_position_embeddings",
                                            "rms_norm_eps",         "hidden_act",
                                            "attention_bias",       "clip_qkv",
                                            "tie_word_embeddings",  "router_aux_loss_coef",
                                            "output_router_logits", "initializer_range",
                                            "eos_token_id",         "pad_token_id",
                                            "bos_token_id",         "head_dim"};
  for (const auto& [key, value] : j.items())
    if (!own.count(key) && !generic_fields().count(key)) r[key].fail("is not an OlmoeConfig field");
  c.validate(source);
  return c;
}

OlmoeConfig OlmoeConfig::load(const std::string& path) {
  std::ifstream in(path);
  MOEGRAD_CHECK(in.good(), "OlmoeConfig: cannot open ", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json_string(ss.str(), path);
}

std::string OlmoeConfig::to_json_string() const {
  auto opt = [](const auto& v) { return v ? json(*v) : json(nullptr); };
  json j = {{"architectures", {"OlmoeForCausalLM"}},
            {"model_type", "olmoe"},
            {"vocab_size", vocab_size},
            {"hidden_size", hidden_size},
            {"intermediate_size", intermediate_size},
            {"num_hidden_layers", num_hidden_layers},
            {"num_attention_heads", num_attention_heads},
            {"num_key_value_heads", num_key_value_heads},
            {"num_experts", num_experts},
            {"num_experts_per_tok", num_experts_per_tok},
            {"norm_topk_prob", norm_topk_prob},
            {"rope_theta", rope_theta},
            {"rope_scaling", nullptr},
            {"max_position_embeddings", max_position_embeddings},
            {"rms_norm_eps", rms_norm_eps},
            {"hidden_act", "silu"},
            {"attention_bias", false},
            {"attention_dropout", 0.0},
            {"clip_qkv", opt(clip_qkv)},
            {"tie_word_embeddings", false},
            {"router_aux_loss_coef", router_aux_loss_coef},
            {"output_router_logits", output_router_logits},
            {"initializer_range", initializer_range},
            {"use_cache", true},
            {"eos_token_id", opt(eos_token_id)},
            {"pad_token_id", opt(pad_token_id)},
            {"bos_token_id", opt(bos_token_id)},
            {"torch_dtype", "float32"}};
  return j.dump(2) + "\n";
}

void OlmoeConfig::save(const std::string& path) const {
  validate(path);
  // Atomic: a failed write never replaces the config.json of a good checkpoint.
  AtomicFile out(path);
  std::string text = to_json_string();
  out.write(text.data(), text.size());
  out.commit();
}

}  // namespace moegrad
