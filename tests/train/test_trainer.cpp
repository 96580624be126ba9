// The training run end to end on a tiny model: resumption is bit-identical, a freeze mask leaves
// every frozen value untouched and costs no optimizer memory, bad input is refused clearly.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/random.h"
#include "core/storage.h"
#include "data/token_shard.h"
#include "moe/checkpoint.h"
#include "tests/testing.h"
#include "train/checkpoint.h"
#include "train/setup.h"
#include "train/trainer.h"

namespace moegrad::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int64_t kVocab = 64;

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("moegrad_trainer_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "train");
    fs::create_directories(dir_ / "heldout");
    Generator gen(11);
    for (const char* lang : {"de", "en"}) {
      for (const char* split : {"train", "heldout"}) {
        data::TokenShardWriter w((dir_ / split / (std::string(lang) + ".shard")).string(), lang,
                                 kVocab);
        for (int d = 0; d < 12; ++d) {
          Tensor ids = randint(1, kVocab, {20 + 3 * d}, gen, DType::I32);
          w.add_document(ids.to_vector<int32_t>(), "doc" + std::to_string(d));
        }
        w.finish();
      }
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A config for a tiny model; `extra` lines are appended (later sections may repeat).
  std::string write_config(const std::string& name, const std::string& extra = "") const {
    std::ostringstream os;
    os << "[model]\nvocab_size = " << kVocab
       << "\nhidden_size = 16\nintermediate_size = 8\nnum_hidden_layers = 2\n"
          "num_attention_heads = 2\nnum_key_value_heads = 2\nnum_experts = 4\n"
          "num_experts_per_tok = 2\nmax_position_embeddings = 32\nseed = 3\n"
          "[data]\ntrain = "
       << (dir_ / "train").string() << "\nheldout = " << (dir_ / "heldout").string()
       << "\neos_id = 0\nseq_len = 16\n"
          // The CPU, also on a machine with a GPU: resumption is bit-identical on the CPU, and
          // the memory test counts host memory.
          "[train]\ndevice = cpu\nsteps = 6\nbatch_size = 2\ngrad_accum = 2\nlr = 0.01\n"
          "warmup_steps = 2\n"
          "z_coef = 0.001\n"
          "[eval]\ninterval = 3\nbatches = 1\n"
          "[run]\ndir = "
       << (dir_ / "runs").string() << "\nname = " << name << "\ncheckpoint_interval = 3\n"
       << extra;
    const fs::path p = dir_ / (name + ".cfg");
    std::ofstream(p) << os.str();
    return p.string();
  }

  std::vector<json> metrics(const std::string& run) const {
    std::ifstream in(dir_ / "runs" / run / "metrics.jsonl");
    std::vector<json> out;
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }

  fs::path dir_;
};

void expect_same_parameters(const OlmoeForCausalLM& a, const OlmoeForCausalLM& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_EQ(pa[i].second.data().to_vector<float>(), pb[i].second.data().to_vector<float>())
        << pa[i].first;
}

TEST_F(TrainerTest, ResumeAfterAStopReproducesTheUninterruptedRunBitForBit) {
  Trainer full(load_config(write_config("full")), false);
  full.run();

  // The same run, killed during step 5 (after the checkpoint of step 3), then resumed.
  const std::string cfg = write_config("cut");
  {
    TrainerCallbacks stop;
    stop.on_step = [](const StepReport& r) {
      if (r.step == 4) throw std::runtime_error("killed");
    };
    Trainer cut(load_config(cfg), false, stop);
    EXPECT_THROW(cut.run(), std::runtime_error);
  }
  Trainer resumed(load_config(cfg), true);
  EXPECT_EQ(resumed.step(), 3);
  resumed.run();

  const auto a = metrics("full"), b = metrics("cut");
  ASSERT_EQ(a.size(), b.size());  // 6 steps and 2 evaluations each
  for (size_t i = 0; i < a.size(); ++i) {
    for (const char* key : {"loss", "ce", "lb", "z", "grad_norm", "lr"}) {
      if (a[i].contains(key)) {
        EXPECT_EQ(a[i][key].get<double>(), b[i][key].get<double>()) << key << " line " << i;
      }
    }
    EXPECT_EQ(a[i]["languages"].dump(), b[i]["languages"].dump());
  }
  expect_same_parameters(full.model(), resumed.model());
  // The final model directory loads and holds the same weights.
  auto reloaded = load_olmoe((dir_ / "runs" / "cut" / "model").string());
  expect_same_parameters(full.model(), *reloaded);
}

TEST_F(TrainerTest, ResumingFromTheFinalCheckpointRepeatsNoEvaluationAndClearsWhatTheKillLeft) {
  const std::string cfg = write_config("last", "keep = 1\n");
  Trainer(load_config(cfg), false).run();
  const fs::path run = dir_ / "runs" / "last";
  const auto before = metrics("last");
  // As a kill while the final model was being published leaves it, the kill having also come
  // before an older checkpoint was deleted, and during the deletion of another.
  fs::rename(run / "model", run / "model.moegrad-old.999999999");
  fs::remove(run / "summary.json");
  std::ofstream(run / "summary.json.moegrad-tmp.999999999") << "{";
  const fs::path checkpoints = run / "checkpoints";
  fs::copy(checkpoints / "step-00000006", checkpoints / "step-00000003");
  fs::copy(checkpoints / "step-00000006", checkpoints / "step-00000002.moegrad-old.999999999");

  Trainer resumed(load_config(cfg), true);
  EXPECT_EQ(resumed.step(), 6);
  resumed.run();
  const auto after = metrics("last");
  ASSERT_EQ(after.size(), before.size());  // the step-6 evaluation is not logged twice
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].dump(), before[i].dump());
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(run)) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"checkpoints", "config.ini", "metrics.jsonl", "model",
                                             "summary.json", "train.log", "trainable.json"}));
  expect_same_parameters(resumed.model(), *load_olmoe((run / "model").string()));
  EXPECT_EQ(std::distance(fs::directory_iterator(checkpoints), fs::directory_iterator()), 1);
  EXPECT_TRUE(fs::exists(checkpoints / "step-00000006"));
}

// The CPU's GEMMs divide their sums by the thread count: a resume on another count says so.
TEST_F(TrainerTest, AResumeOnAnotherThreadCountSaysItWillNotMatchBitForBit) {
  const int threads = omp_get_max_threads();
  const std::string cfg = write_config("threads");
  omp_set_num_threads(2);
  Trainer(load_config(cfg), false).run();
  Trainer(load_config(cfg), true).run();
  omp_set_num_threads(1);
  Trainer(load_config(cfg), true).run();
  omp_set_num_threads(threads);
  std::ifstream in(dir_ / "runs" / "threads" / "train.log");
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string note = "the run used 2 CPU threads and continues on 1";
  ASSERT_NE(log.find(note), std::string::npos) << log;
  EXPECT_EQ(log.find(note), log.rfind(note)) << "said once, for the resume on 1 thread\n" << log;
  EXPECT_NE(log.find("OMP_NUM_THREADS=2 continues it exactly"), std::string::npos) << log;
}

TEST_F(TrainerTest, Bf16MixedPrecisionFollowsTheF32RunAndResumesBitForBit) {
  Trainer f32(load_config(write_config("f32")), false);
  f32.run();
  const std::vector<std::string> bf16 = {"--train.precision=bf16"};
  Trainer full(load_config(write_config("bf16"), bf16), false);
  full.run();
  for (const auto& [name, p] : full.model().named_parameters())
    EXPECT_EQ(p.dtype(), DType::BF16) << name;
  const auto a = metrics("f32"), b = metrics("bf16");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].contains("loss")) continue;
    const double fl = a[i]["loss"].get<double>(), bl = b[i]["loss"].get<double>();
    EXPECT_NEAR(bl, fl, 0.02 * fl) << "line " << i;
    EXPECT_NE(bl, fl) << "line " << i << ": the bf16 run computed in f32?";
  }

  // Killed during step 5, resumed from the checkpoint of step 3 (masters and moments in f32).
  const std::string cfg = write_config("cut");
  {
    TrainerCallbacks stop;
    stop.on_step = [](const StepReport& r) {
      if (r.step == 4) throw std::runtime_error("killed");
    };
    Trainer cut(load_config(cfg, bf16), false, stop);
    EXPECT_THROW(cut.run(), std::runtime_error);
  }
  Trainer resumed(load_config(cfg, bf16), true);
  resumed.run();
  const auto c = metrics("cut");
  ASSERT_EQ(b.size(), c.size());
  for (size_t i = 0; i < b.size(); ++i) {
    for (const char* key : {"loss", "ce", "lb", "z", "grad_norm", "lr", "languages"})
      EXPECT_EQ(b[i].value(key, json()).dump(), c[i].value(key, json()).dump())
          << key << " line " << i;
  }
  expect_same_parameters(full.model(), resumed.model());
  auto reloaded = load_olmoe((dir_ / "runs" / "cut" / "model").string());
  expect_same_parameters(full.model(), *reloaded);
}

// train.expert_gemm = gathered computes the same function. On the CPU it runs the same GEMMs
// except the weight gradient of gate and up, one GEMM of [2I] columns instead of two of [I],
// whose BLAS kernels may sum in another order: the same run up to rounding.
TEST_F(TrainerTest, GatheredExpertGemmsTrainAsTheGroupedOnes) {
  for (const auto& [precision, tol] :
       {std::pair<std::string, double>{"f32", 1e-6}, {"bf16", 1e-2}}) {
    const std::string p = "--train.precision=" + precision;
    Trainer grouped(load_config(write_config("grouped-" + precision), {p}), false);
    grouped.run();
    Trainer gathered(
        load_config(write_config("gathered-" + precision), {p, "--train.expert_gemm=gathered"}),
        false);
    EXPECT_EQ(gathered.model().model().layer(0).mlp().experts().gemm(), ExpertGemm::Gathered);
    gathered.run();
    const auto a = metrics("grouped-" + precision), b = metrics("gathered-" + precision);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      for (const char* key : {"loss", "ce", "lb", "z", "grad_norm"})
        if (a[i].contains(key)) {
          const double x = a[i][key].get<double>(), y = b[i].value(key, -1.0);
          EXPECT_NEAR(y, x, tol * std::abs(x)) << precision << " " << key << " line " << i;
        }
    const auto pa = grouped.model().named_parameters(), pb = gathered.model().named_parameters();
    for (size_t i = 0; i < pa.size(); ++i)
      EXPECT_ALL_CLOSE(pb[i].second.data().to(DType::F32), pa[i].second.data().to(DType::F32), tol,
                       tol)
          << pa[i].first;
  }
  EXPECT_EQ(
      testing::error_of([&] { load_config(write_config("bad"), {"--train.expert_gemm=cublas"}); }),
      (dir_ / "bad.cfg").string() + ": train.expert_gemm: 'cublas': expected grouped or gathered");
}

TEST_F(TrainerTest, Bf16MaskedRunKeepsFrozenValuesAndHoldsMastersOnlyForWhatTrains) {
  const std::string cfg = write_config("masked16", "[freeze]\nexperts = -1:1,2\n");
  const TrainConfig config = load_config(cfg, {"--train.precision=bf16"});
  Trainer trainer(config, false);
  const json saved = json::parse(std::ifstream(dir_ / "runs" / "masked16" / "trainable.json"));
  // exp_avg, exp_avg_sq and the master, f32, of two experts' three projections.
  EXPECT_EQ(saved["optimizer_state_bytes"].get<int64_t>(), 3 * 4 * (2 * 3 * 8 * 16));
  const std::unique_ptr<OlmoeForCausalLM> initial = new_model(config);
  initial->to(DType::BF16);
  trainer.run();
  const auto before = initial->named_parameters(), after = trainer.model().named_parameters();
  for (size_t i = 0; i < before.size(); ++i) {
    const std::string& name = before[i].first;
    const bool trained = name.rfind("model.layers.1.mlp.experts.1.", 0) == 0 ||
                         name.rfind("model.layers.1.mlp.experts.2.", 0) == 0;
    const bool same =
        before[i].second.data().to_vector<float>() == after[i].second.data().to_vector<float>();
    EXPECT_EQ(same, !trained) << name;
  }
}

TEST_F(TrainerTest, RoutingSnapshotsRecordTheDynamicsWithoutChangingTheRun) {
  Trainer plain(load_config(write_config("plain")), false);
  plain.run();
  // A masked run with restricted routers: the snapshots route over every expert, and the
  // training routing comes back afterwards (the run matches one without snapshots).
  const std::string restricted = "[freeze]\nexperts = -1:1,2\nrestrict_router = true\n";
  Trainer masked(load_config(write_config("masked", restricted)), false);
  masked.run();
  Trainer snap(load_config(write_config("snap", restricted + "[eval]\nrouting_tokens = 40\n")),
               false);
  snap.run();
  expect_same_parameters(masked.model(), snap.model());

  std::vector<int64_t> steps;
  for (const json& m : metrics("snap")) {
    if (m["type"] != "routing") continue;
    steps.push_back(m["step"].get<int64_t>());
    ASSERT_EQ(m["layers"].size(), 2u);
    EXPECT_TRUE(m["layers"][1]["jsd_from_english"].contains("de")) << m.dump();
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{0, 3, 6}));  // the start and every evaluation
  for (int64_t step : steps) {
    const fs::path d = dir_ / "runs" / "snap" / "routing" / ("step-" + std::to_string(step));
    std::ifstream in(d / "routing_stats.json");
    const json stats = json::parse(in);
    EXPECT_EQ(stats["languages"]["en"]["tokens"], 40) << d;
    // Evaluation routing: the snapshot's layer 1 uses experts the training restriction hides.
    int64_t hidden = 0;
    for (int64_t e : {0, 3})
      hidden += stats["languages"]["en"]["counts"][1][size_t(e)].get<int64_t>();
    EXPECT_GT(hidden, 0) << d;
    EXPECT_TRUE(fs::exists(d / "routing.json")) << d;
    EXPECT_TRUE(fs::exists(d / "figures" / "entropy.svg")) << d;
  }
  std::ifstream dynamics(dir_ / "runs" / "snap" / "routing" / "figures" / "jsd_mean_over_steps.svg");
  const std::string svg((std::istreambuf_iterator<char>(dynamics)), std::istreambuf_iterator<char>());
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_FALSE(fs::exists(dir_ / "runs" / "plain" / "routing"));  // off by default
}

TEST_F(TrainerTest, AProfileWindowProfilesItsStepsWithoutChangingTheRun) {
  Trainer plain(load_config(write_config("plain")), false);
  plain.run();
  Trainer profiled(load_config(write_config("profiled", "[profile]\nstart = 2\nsteps = 3\n")),
                   false);
  profiled.run();
  expect_same_parameters(plain.model(), profiled.model());

  int lines = 0;
  for (const json& m : metrics("profiled"))
    if (m["type"] == "profile") {
      ++lines;
      EXPECT_EQ(m["steps"], 3);
      EXPECT_EQ(m["last_step"], 4);
    }
  EXPECT_EQ(lines, 1);
  const fs::path dir = dir_ / "runs" / "profiled" / "profile";
  std::ifstream in(dir / "profile.json");
  const json summary = json::parse(in);
  EXPECT_EQ(summary["steps"], 3);
  for (const char* phase : {"data", "forward", "backward", "optimizer"})
    EXPECT_GT(summary["phase_host_ms_per_step"].value(phase, 0.0), 0.0) << phase;
  EXPECT_TRUE(fs::exists(dir / "trace.json"));
  EXPECT_TRUE(fs::exists(dir / "profile.txt"));
  EXPECT_FALSE(fs::exists(dir_ / "runs" / "plain" / "profile"));
}

TEST_F(TrainerTest, AnAdaptMethodChoosesWhatTrainsFromARoutingAnalysis) {
  const fs::path routing = dir_ / "routing.json";
  json analysis = {{"languages", {"de", "en"}}, {"layers", 2}, {"experts", 4}, {"per_layer", json::array()}};
  for (int l = 0; l < 2; ++l)
    analysis["per_layer"].push_back({{"layer", l},
                                     {"language_specific", {{"de", {1}}, {"en", {2}}}},
                                     {"shared", {0, 3}},
                                     {"gaps", json::array()}});
  std::ofstream(routing) << analysis.dump();
  Trainer seft(load_config(write_config("seft", "[adapt]\nmethod = seft\nlanguage = de\nrouting = " +
                                                    routing.string() + "\nlayers = 1\n")),
               false);
  // The router of layer 1 (4 x 16) and expert 1's three projections (3 x 8 x 16).
  EXPECT_EQ(seft.trainable().trainable, 4 * 16 + 3 * 8 * 16);
  std::ifstream in(dir_ / "runs" / "seft" / "trainable.json");
  const json t = json::parse(in);
  EXPECT_EQ(t["adaptation"]["method"], "seft");
  EXPECT_EQ(t["adaptation"]["experts"]["1"], json({1}));
  EXPECT_TRUE(load_config(write_config("seft2", "[adapt]\nmethod = aeft\n")).restricts_router());
  EXPECT_FALSE(load_config(write_config("final", "[adapt]\nmethod = final_layers\n")).restricts_router());
  testing::expect_error(
      [&] { load_config(write_config("both", "[freeze]\nexperts = -1:all\n[adapt]\nmethod = aeft\n")); },
      "adapt.method: chooses what trains: leave the [freeze] rules out");
  testing::expect_error([&] { load_config(write_config("nofile", "[adapt]\nmethod = seft\nlanguage = de\n")); },
                        "adapt.routing: '' is not a file");
}

TEST_F(TrainerTest, AMaskTrainsOnlyItsExpertsAndLeavesEverythingElseBitIdentical) {
  const std::string cfg = write_config(
      "masked",
      "[freeze]\nexperts = -1:1,2\ntrain = model.layers.1.mlp.gate.weight\n"
      "restrict_router = true\n");
  TrainConfig config = load_config(cfg);
  Trainer trainer(config, false);
  const std::unique_ptr<OlmoeForCausalLM> fresh = new_model(config);  // the same seed
  const OlmoeForCausalLM& initial = *fresh;

  const TrainableCount count = trainer.trainable();
  const int64_t expert = 3 * 8 * 16, router = 4 * 16;
  EXPECT_EQ(count.trainable, 2 * expert + router);
  EXPECT_EQ(count.total, initial.num_parameters());
  const json saved =
      json::parse(std::ifstream(dir_ / "runs" / "masked" / "trainable.json"));
  EXPECT_EQ(saved["trainable"].get<int64_t>(), count.trainable);

  trainer.run();
  auto before = initial.named_parameters();
  auto after = trainer.model().named_parameters();
  ASSERT_EQ(before.size(), after.size());
  int changed = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    const std::string& name = before[i].first;
    const bool trained = name == "model.layers.1.mlp.gate.weight" ||
                         name.rfind("model.layers.1.mlp.experts.1.", 0) == 0 ||
                         name.rfind("model.layers.1.mlp.experts.2.", 0) == 0;
    const bool same =
        before[i].second.data().to_vector<float>() == after[i].second.data().to_vector<float>();
    if (trained) {
      EXPECT_FALSE(same) << name << " trains but did not change";
      changed += !same;
    } else {
      EXPECT_TRUE(same) << name << " is frozen but changed";
    }
  }
  EXPECT_EQ(changed, 7);
}

TEST_F(TrainerTest, AMaskedRunNeedsFarLessOptimizerMemoryThanFullTraining) {
  Trainer full(load_config(write_config("all")), false);
  Trainer masked(load_config(write_config("few", "[freeze]\nexperts = -1:1,2\n")), false);
  const json a = json::parse(std::ifstream(dir_ / "runs" / "all" / "trainable.json"));
  const json b = json::parse(std::ifstream(dir_ / "runs" / "few" / "trainable.json"));
  EXPECT_EQ(a["optimizer_state_bytes"].get<int64_t>(), 2 * 4 * full.trainable().total);
  EXPECT_EQ(b["optimizer_state_bytes"].get<int64_t>(), 2 * 4 * (2 * 3 * 8 * 16));

  // Peak host memory of the runs themselves, on a model whose weights outweigh its activations.
  const std::vector<std::string> wide = {"--model.intermediate_size=256", "--train.steps=2",
                                         "--train.warmup_steps=0", "--eval.batches=1"};
  auto peak_of = [&](const std::string& name, const std::string& extra) {
    Trainer t(load_config(write_config(name, extra), wide), false);
    reset_peak_memory(Device::cpu());
    const int64_t base = memory_stats(Device::cpu()).current_bytes;
    t.run();
    return memory_stats(Device::cpu()).peak_bytes - base;
  };
  const int64_t full_peak = peak_of("wide_all", "");
  const int64_t masked_peak = peak_of("wide_few", "[freeze]\nexperts = -1:1,2\n");
  EXPECT_LT(double(masked_peak), 0.5 * double(full_peak))
      << "masked " << masked_peak << " bytes, full " << full_peak;
}

TEST_F(TrainerTest, ARunDirectoryIsNeverOverwrittenAndResumeNeedsACheckpoint) {
  const std::string cfg = write_config("once");
  const std::vector<std::string> one = {"--train.steps=1", "--train.warmup_steps=0"};
  testing::expect_error([&] { Trainer(load_config(cfg, one), true); }, "does not exist");
  {
    // Started twice at once (or resumed while it runs): the second is refused.
    Trainer running(load_config(cfg, one), false);
    testing::expect_error([&] { Trainer(load_config(cfg, one), false); }, "is in use by another");
    testing::expect_error([&] { Trainer(load_config(cfg, one), true); }, "is in use by another");
    running.run();
  }
  testing::expect_error([&] { Trainer(load_config(cfg, one), false); }, "already holds a run");
  testing::expect_error([&] { Trainer(load_config(cfg, {"--train.batch_size=4"}), true); },
                        "train.batch_size: 2 -> 4");
}

TEST_F(TrainerTest, CorruptOrTruncatedCheckpointsAreRefused) {
  const std::string cfg = write_config("broken");
  Trainer(load_config(cfg, {"--train.steps=1", "--train.warmup_steps=0"}), false).run();
  const fs::path ck = dir_ / "runs" / "broken" / "checkpoints" / "step-00000001";
  const fs::path weights = ck / "model.safetensors";
  {
    std::fstream f(weights, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
  }
  testing::expect_error([&] { Trainer(load_config(cfg), true); }, "is corrupt");
  fs::resize_file(weights, fs::file_size(weights) - 10);
  testing::expect_error([&] { Trainer(load_config(cfg), true); }, "truncated");
  fs::remove(ck / "trainer_state.json");
  testing::expect_error([&] { Trainer(load_config(cfg), true); }, "incomplete");
}

TEST_F(TrainerTest, AnEditedCheckpointStateIsRefusedNamingTheField) {
  const std::string cfg = write_config("edited");
  Trainer(load_config(cfg, {"--train.steps=1", "--train.warmup_steps=0"}), false).run();
  const fs::path state_file =
      dir_ / "runs" / "edited" / "checkpoints" / "step-00000001" / "trainer_state.json";
  const json state = json::parse(std::ifstream(state_file));
  auto refused = [&](const std::string& pointer, const json& value, const std::string& message) {
    json edited = state;
    edited[json::json_pointer(pointer)] = value;
    std::ofstream(state_file) << edited.dump();
    testing::expect_error([&] { Trainer(load_config(cfg), true); },
                          state_file.string() + ": field '" + message);
  };
  refused("/step", -1, "step' must be an integer >= 0, got -1");
  refused("/optimizer_step", 1.5, "optimizer_step' must be an integer >= 0, got 1.5");
  refused("/files/model.safetensors/bytes", "10", "files[\"model.safetensors\"].bytes' must be");
  refused("/freeze_mask/parameters/0/mode", 3, "freeze_mask.parameters[0].mode' must be a string");
  refused("/loader/streams/0/offset", "x",
          "loader.streams[0].offset' must be an integer >= 0, got \"x\"");
  refused("/loader/seed", 9, "loader' does not fit: it was saved with seed 9");
  std::ofstream(state_file) << state.dump();
  EXPECT_NO_THROW(Trainer(load_config(cfg), true));
}

TEST_F(TrainerTest, ANonFiniteLossStopsTheRunAndKeepsTheLastCheckpoint) {
  const std::string cfg = write_config("diverge");
  {
    TrainerCallbacks stop;
    stop.on_step = [](const StepReport& r) {
      if (r.step == 4) throw std::runtime_error("killed");
    };
    Trainer first(load_config(cfg), false, stop);
    EXPECT_THROW(first.run(), std::runtime_error);
  }
  // Resumed with an absurd learning rate, the weights blow up and the next loss is not finite.
  Trainer trainer(load_config(cfg, {"--train.lr=1e30", "--train.clip=0"}), true);
  const std::string message = testing::error_of([&] { trainer.run(); });
  EXPECT_NE(message.find("no parameter was updated"), std::string::npos) << message;
  EXPECT_NE(message.find("step-00000003"), std::string::npos) << message;
  EXPECT_NE(message.find("lower train.lr"), std::string::npos) << message;
  // The checkpoint it names is intact.
  EXPECT_NO_THROW(load_checkpoint(
      (dir_ / "runs" / "diverge" / "checkpoints" / "step-00000003").string()));
}

TEST_F(TrainerTest, ANonFiniteFirstStepBlamesTheStartingModelNotTheLearningRate) {
  Trainer trainer(load_config(write_config("blowup"), {"--model.initializer_range=1e20"}), false);
  const std::string message = testing::error_of([&] { trainer.run(); });
  EXPECT_NE(message.find("step 1: "), std::string::npos) << message;
  EXPECT_NE(message.find("check model.initializer_range"), std::string::npos) << message;
  EXPECT_EQ(message.find("train.lr"), std::string::npos) << message;
}

TEST_F(TrainerTest, BadConfigsNameTheFileAndTheKey) {
  const std::string good = write_config("bad");
  testing::expect_error([&] { load_config((dir_ / "missing.cfg").string()); },
                        "missing.cfg' does not exist");
  testing::expect_error([&] { load_config(write_config("x", "[train]\nlrr = 1\n")); },
                        "unknown key 'train.lrr'");
  testing::expect_error([&] { load_config(write_config("y", "[train]\nbeta1 = many\n")); },
                        "train.beta1");
  testing::expect_error([&] { load_config(good, {"--train.batch_size=0"}); },
                        "train.batch_size: must be positive");
  testing::expect_error([&] { load_config(good, {"--data.train=/nonexistent"}); },
                        "data.train: '/nonexistent' is not a directory");
  testing::expect_error([&] { load_config(good, {"--data.weights=de:x"}); }, "data.weights");
  testing::expect_error([&] { load_config(good, {"--train.bogus=1"}); },
                        "command line: unknown key");
  testing::expect_error([&] { load_config(good, {"--train.warmup_steps=7"}); },
                        "warmup_steps 7 exceeds total_steps 6");
  testing::expect_error([&] { load_config(good, {"--train.schedule=linear"}); },
                        "linear");
  testing::expect_error([&] { load_config(good, {"--train.device=tpu"}); },
                        "train.device: invalid device 'tpu': expected cpu, cuda, cuda:N or auto");
  // Infinite values once trained nothing (eps), or blew up after the first step.
  for (const char* key : {"train.lr", "train.eps", "train.weight_decay", "train.clip",
                          "train.lb_coef", "train.z_coef"})
    testing::expect_error([&] { load_config(good, {std::string("--") + key + "=inf"}); },
                          std::string(key) + ": must be a finite number");
  testing::expect_error([&] { load_config(good, {"--data.eos_id=2147483648"}); },
                        "data.eos_id: must be a token id (or -1: the tokenizer's <|endoftext|>), "
                        "got 2147483648");
  // Checked when the config loads, not when the analysis is read after the model.
  testing::expect_error([&] { load_config(good, {"--adapt.parents=uk"}); },
                        "adapt.parents: 'uk' is not child:parent");
  EXPECT_EQ(load_config(good, {"--adapt.parents=none"}).adapt.parents, "none");
  testing::expect_error([&] { load_config(good, {"--train.device=cuda:99"}); },
                        "train.device: device cuda:99: no such CUDA device");
  testing::expect_error(
      [&] { Trainer(load_config(good, {"--data.languages=de,fr"}), false); },
      "no shard for 'fr'");
  testing::expect_error(
      [&] { Trainer(load_config(write_config("z", "[freeze]\ntrain = model.nothing.*\n")), false); },
      "model.nothing.*");
}

TEST_F(TrainerTest, TheResolvedConfigReadsBackToTheSameConfig) {
  const TrainConfig a = load_config(write_config(
      "ini",
      "[freeze]\nexperts = -1:1\nfreeze = model.layers.1.mlp.experts.1.up_proj.*\n"
      "[train]\ngroup = *norm* weight_decay=0\ngroup = lm_head.* lr_scale=0.5\n"));
  ASSERT_EQ(a.param_groups().size(), 2u);
  EXPECT_EQ(a.param_groups()[0].weight_decay, 0.0);
  EXPECT_EQ(a.param_groups()[1].lr_scale, 0.5);
  EXPECT_EQ(a.param_groups()[1].weight_decay, 0.1);
  const fs::path p = dir_ / "resolved.cfg";
  std::ofstream(p) << to_ini(a);
  const TrainConfig b = load_config(p.string());
  EXPECT_EQ(to_ini(a).substr(to_ini(a).find('\n')), to_ini(b).substr(to_ini(b).find('\n')));
  EXPECT_EQ(b.freeze.rules, a.freeze.rules);
  EXPECT_EQ(b.train.groups, a.train.groups);
  testing::expect_error([&] { load_config(p.string(), {"--train.group=*norm* decay=0"}); },
                        "'decay=0' is not lr_scale=X or weight_decay=Y");
}

}  // namespace
}  // namespace moegrad::train
