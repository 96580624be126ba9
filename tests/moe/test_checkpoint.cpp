#include <filesystem>
#include <fstream>

#include "core/io/safetensors.h"
#include "moe/checkpoint.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;

const fs::path kBase = fs::path(MOEGRAD_SOURCE_DIR) / "tests/reference/olmoe/base";

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("moegrad_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void expect_same_tensors(const OlmoeForCausalLM& a, const OlmoeForCausalLM& b) {
  auto ta = a.hf_named_tensors(), tb = b.hf_named_tensors();
  ASSERT_EQ(ta.size(), tb.size());
  for (size_t i = 0; i < ta.size(); ++i) {
    EXPECT_EQ(ta[i].first, tb[i].first);
    EXPECT_EQ(ta[i].second.to_vector<float>(), tb[i].second.to_vector<float>()) << ta[i].first;
  }
}

TEST(Checkpoint, FusedV5LayoutLoadsLikePerExpert) {
  fs::path d = fresh_dir("fused");
  fs::copy_file(kBase / "config.json", d / "config.json");
  fs::copy_file(kBase / "model_fused.safetensors", d / "model.safetensors");
  expect_same_tensors(*load_olmoe(kBase.string()), *load_olmoe(d.string()));
  fs::remove_all(d);
}

TEST(Checkpoint, ExportRoundTripsBitIdentically) {
  auto model = load_olmoe(kBase.string());
  fs::path d = fresh_dir("export");
  save_olmoe(*model, d.string());
  expect_same_tensors(*model, *load_olmoe(d.string()));
  // Nothing but the two files: the atomic writes left no temporaries behind.
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(d)) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"config.json", "model.safetensors"}));
  fs::remove_all(d);
}

TEST(Checkpoint, ShardedCheckpointLoads) {
  auto model = load_olmoe(kBase.string());
  fs::path d = fresh_dir("sharded");
  fs::copy_file(kBase / "config.json", d / "config.json");
  save_sharded(d.string(), model->hf_named_tensors(), 200000);
  EXPECT_FALSE(fs::exists(d / "model.safetensors"));
  expect_same_tensors(*model, *load_olmoe(d.string()));
  fs::remove_all(d);
}

TEST(Checkpoint, Bf16WeightsAreConvertedToF32) {
  auto model = load_olmoe(kBase.string());
  fs::path d = fresh_dir("bf16");
  fs::copy_file(kBase / "config.json", d / "config.json");
  auto tensors = model->hf_named_tensors();
  for (auto& [name, t] : tensors) t = t.to(DType::BF16);
  save_safetensors((d / "model.safetensors").string(), tensors);
  auto loaded = load_olmoe(d.string());
  auto got = loaded->hf_named_tensors();
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].second.dtype(), DType::F32);
    EXPECT_EQ(got[i].second.to_vector<float>(), tensors[i].second.to(DType::F32).to_vector<float>())
        << got[i].first;
  }
  fs::remove_all(d);
}

TEST(Checkpoint, MissingExtraOrMisshapenTensorsAreNamed) {
  auto model = load_olmoe(kBase.string());
  auto tensors = model->hf_named_tensors();
  fs::path d = fresh_dir("bad");
  fs::copy_file(kBase / "config.json", d / "config.json");

  auto missing = tensors;
  missing.erase(missing.begin() + 3);
  save_safetensors((d / "model.safetensors").string(), missing);
  expect_error([&] { load_olmoe(d.string()); }, "has no tensor '" + tensors[3].first + "'");

  auto extra = tensors;
  extra.emplace_back("model.layers.9.mlp.gate.weight", zeros({8, 64}));
  save_safetensors((d / "model.safetensors").string(), extra);
  expect_error([&] { load_olmoe(d.string()); }, "holds tensor 'model.layers.9.mlp.gate.weight'");

  auto misshapen = tensors;
  misshapen[0].second = zeros({3, 3});
  save_safetensors((d / "model.safetensors").string(), misshapen);
  expect_error([&] { load_olmoe(d.string()); }, "has shape [3, 3], but config.json implies");

  fs::remove(d / "model.safetensors");
  expect_error([&] { load_olmoe(d.string()); }, "holds neither model.safetensors");
  fs::remove_all(d);
}

}  // namespace
}  // namespace moegrad
