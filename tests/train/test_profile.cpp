// The profiler over training: expert rows carry the tokens the router produced, backward work is
// attributed to the module whose forward made it, and the Chrome trace is valid and nested.
#include <filesystem>
#include <fstream>
#include <map>

#include "core/random.h"
#include "moe/olmoe.h"
#include "tests/testing.h"
#include "tests/tiny_olmoe.h"
#include "train/profile.h"

namespace moegrad::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const json* row(const json& rows, const std::string& key) {
  for (const json& r : rows)
    if (r["key"] == key) return &r;
  return nullptr;
}

TEST(Profile, ExpertRowsShowTheTokensOfAForcedRouting) {
  const OlmoeConfig c = testing::tiny_olmoe_config(61, 4, 2, 32);
  Generator gen(1);
  const auto owned = testing::tiny_olmoe(c, gen);
  OlmoeForCausalLM& model = *owned;
  model.name_for_profiler("");
  RouterHooks hooks;
  hooks.intervene = restrict_experts({1, 3});  // every token to experts 1 and 3, in each layer
  model.set_router_hooks(hooks);
  const Tensor ids = randint(0, 61, {3, 7}, gen);
  profiler::start();
  {
    profiler::PhaseScope forward(profiler::Phase::Forward);
    Variable loss = model.loss(ids, MoeLossWeights::hf(c)).loss;
    profiler::PhaseScope backward(profiler::Phase::Backward);
    loss.backward();
  }
  ProfileRun run;
  run.steps = 1;
  run.events = profiler::stop();
  const json s = profile_summary(run);

  std::map<std::string, std::vector<double>> tokens;
  for (const json& r : s["experts"]) tokens[r["module"]].push_back(r["tokens"]);
  const std::vector<double> forced = {0, 21, 0, 21};  // 3 x 7 tokens each
  EXPECT_EQ(tokens["model.layers.0.mlp.experts"], forced);
  EXPECT_EQ(tokens["model.layers.1.mlp.experts"], forced);
  // Two layers: two grouped GEMMs forward each (gate and up as one, then down), four backward
  // (input and weight gradients), the backward ones attributed to the experts that ran them
  // forward.
  ASSERT_NE(row(s["by_op"], "grouped_matmul (forward)"), nullptr);
  EXPECT_EQ((*row(s["by_op"], "grouped_matmul (forward)"))["calls"], 4);
  EXPECT_EQ((*row(s["by_op"], "grouped_matmul (backward)"))["calls"], 8);
  const json* experts = row(s["by_module"], "model.layers.*.mlp.experts");
  ASSERT_NE(experts, nullptr);
  EXPECT_GE((*experts)["calls"].get<double>(), 12);
}

// Complete events of one lane must nest: each starts after and ends before the one enclosing
// it, or starts after it ended.
void expect_nested(const json& trace) {
  std::map<std::pair<int, int>, std::vector<std::pair<double, double>>> lanes;
  for (const json& e : trace["traceEvents"]) {
    ASSERT_TRUE(e.contains("ph") && e.contains("name") && e.contains("pid")) << e.dump();
    if (e["ph"] != "X") continue;
    ASSERT_GE(e["dur"].get<double>(), 0.0);
    lanes[{e["pid"].get<int>(), e["tid"].get<int>()}].push_back({e["ts"], e["dur"]});
  }
  ASSERT_FALSE(lanes.empty());
  const double slack = 1e-3;  // microseconds of rounding
  for (auto& [lane, spans] : lanes) {
    std::stable_sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) {
      return a.first < b.first || (a.first == b.first && a.second > b.second);
    });
    std::vector<double> open_ends;
    for (const auto& [ts, dur] : spans) {
      while (!open_ends.empty() && ts >= open_ends.back() - slack) open_ends.pop_back();
      if (!open_ends.empty()) {
        EXPECT_LE(ts + dur, open_ends.back() + slack) << "lane " << lane.first << "/" << lane.second;
      }
      open_ends.push_back(ts + dur);
    }
  }
}

TEST(Profile, ARunAccountsForItsStepsAndWritesANestedChromeTrace) {
  const fs::path dir = fs::temp_directory_path() / ("moegrad-profile-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path cfg = dir / "tiny.cfg";
  std::ofstream(cfg) << "[model]\nvocab_size = 97\nhidden_size = 32\nintermediate_size = 16\n"
                        "num_hidden_layers = 2\nnum_attention_heads = 2\nnum_key_value_heads = 2\n"
                        "num_experts = 4\nnum_experts_per_tok = 2\nmax_position_embeddings = 64\n"
                        "[data]\nseq_len = 32\n[train]\nbatch_size = 2\n";
  const TrainConfig config = load_config(cfg.string(), {}, /*check_inputs=*/false);
  const ProfileRun run = run_profile(config, 2, 1);
  const json s = profile_summary(run);
  EXPECT_EQ(s["steps"], 2);
  EXPECT_GT(s["ops_ms_per_step"].get<double>(), 0.0);
  EXPECT_LE(s["ops_share_of_step"].get<double>(), 1.0);
  EXPECT_NEAR(s["ops_ms_per_step"].get<double>() + s["unaccounted_ms_per_step"].get<double>(),
              s["step_ms"].get<double>(), 1e-6);
  for (const char* phase : {"forward", "backward", "optimizer"})
    EXPECT_NE(row(s["by_phase"], phase), nullptr) << phase;
  EXPECT_NE(profile_table(s).find("by_module"), std::string::npos);
  const double shares = s["shares"]["moe"].get<double>() + s["shares"]["attention"].get<double>() +
                        s["shares"]["rest"].get<double>();
  EXPECT_NEAR(shares, s["ops_share_of_step"].get<double>(), 1e-9);
  EXPECT_GT(s["shares"]["moe"].get<double>(), 0.0);
  EXPECT_GT(s["shares"]["attention"].get<double>(), 0.0);
  // Every category rose during the run; the ops' scratch (RoPE's tables, at least) as workspace.
  for (const char* c : {"weights", "gradients", "optimizer state", "activations", "workspace"})
    EXPECT_GT(s["memory"][c]["peak_bytes"].get<int64_t>(), 0) << c << ": " << s["memory"].dump();
  EXPECT_NE(profile_table(s).find(", workspace "), std::string::npos);

  const json trace = json::parse(chrome_trace(run.events).dump());
  expect_nested(trace);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moegrad::train
