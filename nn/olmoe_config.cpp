#include "nn/olmoe_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/io/atomic_file.h"

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

class Reader {
 public:
  Reader(const json& j, const std::string& source) : j_(j), source_(source) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error("OlmoeConfig: " + source_ + ": field '" + field + "' " + what);
  }
  void expect(bool ok, const std::string& field, const char* type) const {
    if (!ok) fail(field, std::string("must be ") + type + ", got " + j_.at(field).dump());
  }
  bool present(const std::string& f) const { return j_.contains(f); }
  bool is_null(const std::string& f) const { return j_.at(f).is_null(); }

  void get(const std::string& f, int64_t& out) const {
    if (!present(f)) return;
    expect(j_.at(f).is_number_integer(), f, "an integer");
    out = j_.at(f).get<int64_t>();
  }
  void get(const std::string& f, double& out) const {
    if (!present(f)) return;
    expect(j_.at(f).is_number(), f, "a number");
    out = j_.at(f).get<double>();
  }
  void get(const std::string& f, bool& out) const {
    if (!present(f)) return;
    expect(j_.at(f).is_boolean(), f, "a boolean");
    out = j_.at(f).get<bool>();
  }
  void get(const std::string& f, std::optional<int64_t>& out) const {
    if (!present(f)) return;
    if (is_null(f)) {
      out.reset();
      return;
    }
    expect(j_.at(f).is_number_integer(), f, "an integer or null");
    out = j_.at(f).get<int64_t>();
  }
  void get(const std::string& f, std::optional<double>& out) const {
    if (!present(f)) return;
    if (is_null(f)) {
      out.reset();
      return;
    }
    expect(j_.at(f).is_number(), f, "a number or null");
    out = j_.at(f).get<double>();
  }
  std::string string_field(const std::string& f) const {
    expect(j_.at(f).is_string(), f, "a string");
    return j_.at(f).get<std::string>();
  }

 private:
  const json& j_;
  const std::string& source_;
};

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
  MOEGRAD_CHECK(rms_norm_eps > 0 && rope_theta > 0, "OlmoeConfig: ", source,
                ": rms_norm_eps and rope_theta must be positive");
  MOEGRAD_CHECK(!clip_qkv || *clip_qkv > 0, "OlmoeConfig: ", source,
                ": field 'clip_qkv' must be positive or null");
}

OlmoeConfig OlmoeConfig::from_json_string(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error("OlmoeConfig: " + source + ": invalid JSON: " + e.what());
  }
  MOEGRAD_CHECK(j.is_object(), "OlmoeConfig: ", source, ": top level must be a JSON object");
  Reader r(j, source);
  MOEGRAD_CHECK(r.present("model_type"), "OlmoeConfig: ", source,
                ": missing required field 'model_type'");
  std::string model_type = r.string_field("model_type");
  if (model_type != "olmoe") r.fail("model_type", "must be \"olmoe\", got \"" + model_type + "\"");

  OlmoeConfig c;
  r.get("vocab_size", c.vocab_size);
  r.get("hidden_size", c.hidden_size);
  r.get("intermediate_size", c.intermediate_size);
  r.get("num_hidden_layers", c.num_hidden_layers);
  r.get("num_attention_heads", c.num_attention_heads);
  c.num_key_value_heads = c.num_attention_heads;
  if (r.present("num_key_value_heads") && !r.is_null("num_key_value_heads"))
    r.get("num_key_value_heads", c.num_key_value_heads);
  r.get("num_experts", c.num_experts);
  r.get("num_experts_per_tok", c.num_experts_per_tok);
  r.get("norm_topk_prob", c.norm_topk_prob);
  r.get("rope_theta", c.rope_theta);
  r.get("max_position_embeddings", c.max_position_embeddings);
  r.get("rms_norm_eps", c.rms_norm_eps);
  r.get("clip_qkv", c.clip_qkv);
  r.get("router_aux_loss_coef", c.router_aux_loss_coef);
  r.get("output_router_logits", c.output_router_logits);
  r.get("initializer_range", c.initializer_range);
  r.get("eos_token_id", c.eos_token_id);
  r.get("pad_token_id", c.pad_token_id);
  r.get("bos_token_id", c.bos_token_id);

  if (r.present("hidden_act") && r.string_field("hidden_act") != "silu")
    r.fail("hidden_act", "must be \"silu\" (the only activation supported)");
  bool flag = false;
  r.get("attention_bias", flag);
  if (flag) r.fail("attention_bias", "must be false (biases are not supported)");
  flag = false;
  r.get("tie_word_embeddings", flag);
  if (flag) r.fail("tie_word_embeddings", "must be false (lm_head is not tied)");
  if (r.present("rope_scaling") && !r.is_null("rope_scaling"))
    r.fail("rope_scaling", "must be null (rope scaling is not supported)");
  if (r.present("rope_parameters") && !r.is_null("rope_parameters")) {
    const json& rp = j.at("rope_parameters");
    r.expect(rp.is_object(), "rope_parameters", "an object");
    for (const auto& [key, value] : rp.items()) {
      const std::string field = "rope_parameters." + key;
      if (key == "rope_theta") {
        if (!value.is_number()) r.fail(field, "must be a number, got " + value.dump());
        c.rope_theta = value.get<double>();
      } else if (key == "rope_type") {
        if (value != "default") r.fail(field, "must be \"default\", got " + value.dump());
      } else {
        r.fail(field, "is not supported");
      }
    }
  }
  if (r.present("head_dim") && !r.is_null("head_dim")) {
    int64_t head_dim = 0;
    r.get("head_dim", head_dim);
    if (head_dim != c.head_dim())
      r.fail("head_dim",
             "must equal hidden_size / num_attention_heads = " + std::to_string(c.head_dim()));
  }

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
    if (!own.count(key) && !generic_fields().count(key)) r.fail(key, "is not an OlmoeConfig field");
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
