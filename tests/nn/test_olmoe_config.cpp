#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "nn/olmoe_config.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::expect_error;

// The released OLMoE-1B-7B-0924 config.json (as on the Hub).
const char* kReleased = R"({
  "architectures": ["OlmoeForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "clip_qkv": null, "eos_token_id": 50279, "hidden_act": "silu", "hidden_size": 2048,
  "initializer_range": 0.02, "intermediate_size": 1024, "max_position_embeddings": 4096,
  "model_type": "olmoe", "norm_topk_prob": false, "num_attention_heads": 16,
  "num_experts": 64, "num_experts_per_tok": 8, "num_hidden_layers": 16,
  "num_key_value_heads": 16, "output_router_logits": false, "pad_token_id": 1,
  "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0,
  "router_aux_loss_coef": 0.01, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 50304
})";

TEST(OlmoeConfig, ReadsTheReleasedConfig) {
  OlmoeConfig c = OlmoeConfig::from_json_string(kReleased, "config.json");
  EXPECT_EQ(c.vocab_size, 50304);
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.intermediate_size, 1024);
  EXPECT_EQ(c.num_hidden_layers, 16);
  EXPECT_EQ(c.num_key_value_heads, 16);
  EXPECT_EQ(c.head_dim(), 128);
  EXPECT_EQ(c.num_experts, 64);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_FALSE(c.clip_qkv.has_value());
  EXPECT_EQ(c.eos_token_id, 50279);
  EXPECT_EQ(c.pad_token_id, 1);
  EXPECT_FALSE(c.bos_token_id.has_value());
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.router_aux_loss_coef, 0.01);
}

TEST(OlmoeConfig, DefaultsAreTransformersClassDefaults) {
  OlmoeConfig c =
      OlmoeConfig::from_json_string(R"({"model_type": "olmoe", "num_attention_heads": 8})");
  EXPECT_EQ(c.intermediate_size, 2048);
  EXPECT_EQ(c.num_key_value_heads, 8);  // absent: num_attention_heads
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.num_experts, 64);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_EQ(c.max_position_embeddings, 4096);
}

TEST(OlmoeConfig, RopeParametersAndClipQkv) {
  OlmoeConfig c = OlmoeConfig::from_json_string(
      R"({"model_type": "olmoe", "rope_parameters": {"rope_type": "default", "rope_theta": 500000},
          "clip_qkv": 8, "bos_token_id": 3})");
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.clip_qkv, 8.0);
  EXPECT_EQ(c.bos_token_id, 3);
}

TEST(OlmoeConfig, RoundTripsThroughAFile) {
  OlmoeConfig c;
  c.vocab_size = 101;
  c.hidden_size = 24;
  c.intermediate_size = 12;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.num_experts = 5;
  c.num_experts_per_tok = 3;
  c.norm_topk_prob = true;
  c.rope_theta = 1234.5;
  c.rms_norm_eps = 1e-6;
  c.clip_qkv = 2.5;
  c.router_aux_loss_coef = 0.02;
  c.output_router_logits = true;
  c.bos_token_id = 7;
  c.pad_token_id.reset();
  const std::string path =
      (std::filesystem::temp_directory_path() / "moegrad_test_olmoe_config.json").string();
  c.save(path);
  OlmoeConfig r = OlmoeConfig::load(path);
  std::remove(path.c_str());
  EXPECT_EQ(r.to_json_string(), c.to_json_string());
  EXPECT_EQ(r.num_key_value_heads, 2);
  EXPECT_EQ(r.clip_qkv, 2.5);
  EXPECT_FALSE(r.pad_token_id.has_value());
  EXPECT_TRUE(r.norm_topk_prob);
}

TEST(OlmoeConfig, Errors) {
  // Each config.json text, and what its error must say.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "x/config.json: invalid JSON"},
      {R"({"hidden_size": 8})", "x/config.json: missing required field 'model_type'"},
      {R"({"model_type": "llama"})", "field 'model_type' must be \"olmoe\""},
      {R"({"model_type": "olmoe", "hidden_sise": 8})",
       "x/config.json: field 'hidden_sise' is not an OlmoeConfig field"},
      {R"({"model_type": "olmoe", "hidden_size": "8"})",
       "x/config.json: field 'hidden_size' must be an integer"},
      {R"({"model_type": "olmoe", "rope_theta": true})",
       "field 'rope_theta' must be a finite number, got true"},
      {R"({"model_type": "olmoe", "norm_topk_prob": 1})",
       "field 'norm_topk_prob' must be true or false, got 1"},
      {R"({"model_type": "olmoe", "hidden_act": "gelu"})", "field 'hidden_act'"},
      {R"({"model_type": "olmoe", "attention_bias": true})",
       "field 'attention_bias' must be false"},
      {R"({"model_type": "olmoe", "tie_word_embeddings": true})",
       "field 'tie_word_embeddings' must be false"},
      {R"({"model_type": "olmoe", "rope_scaling": {"type": "linear"}})", "field 'rope_scaling'"},
      {R"({"model_type": "olmoe", "rope_parameters": {"rope_theta": "1e4"}})",
       "x/config.json: field 'rope_parameters.rope_theta' must be a finite number"},
      {R"({"model_type": "olmoe", "rope_parameters": {"factor": 2}})",
       "field 'rope_parameters.factor' is not supported"},
      {R"({"model_type": "olmoe", "rope_parameters": [1]})",
       "field 'rope_parameters' must be an object, got [1]"},
      {R"({"model_type": "olmoe", "eos_token_id": 1.5})",
       "field 'eos_token_id' must be an integer, got 1.5"},
      {R"({"model_type": "olmoe", "num_experts": 4})",
       "num_experts_per_tok 8 exceeds num_experts 4"},
      {R"({"model_type": "olmoe", "num_key_value_heads": 5})",
       "must be a multiple of num_key_value_heads 5"},
      {R"({"model_type": "olmoe", "rms_norm_eps": 0})",
       "field 'rms_norm_eps' must be a finite number > 0, got 0"},
      {R"({"model_type": "olmoe", "initializer_range": -0.02})",
       "field 'initializer_range' must be a finite number >= 0, got -0.02"},
      {R"({"model_type": "olmoe", "clip_qkv": 0})",
       "field 'clip_qkv' must be a finite number > 0 (or null), got 0"},
  };
  for (const auto& [text, message] : cases)
    expect_error([&] { OlmoeConfig::from_json_string(text, "x/config.json"); }, message);
  // An experiment config's [model] can say inf, which JSON cannot; it once trained on zeros.
  const double inf = std::numeric_limits<double>::infinity();
  for (double OlmoeConfig::*field : {&OlmoeConfig::rms_norm_eps, &OlmoeConfig::rope_theta,
                                     &OlmoeConfig::initializer_range}) {
    OlmoeConfig c;
    c.*field = inf;
    expect_error([&] { c.validate("run.cfg [model]"); }, "must be a finite number");
    c.*field = std::nan("");
    expect_error([&] { c.validate("run.cfg [model]"); }, "must be a finite number");
  }
  expect_error([] { OlmoeConfig::load("/nonexistent/config.json"); },
               "cannot open /nonexistent/config.json");
}

}  // namespace
}  // namespace moegrad
