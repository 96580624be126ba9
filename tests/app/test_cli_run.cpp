// `moegrad run`: a whole experiment of a tiny model on a tiny corpus through every stage, the
// report it writes, a rerun that skips what is done, and errors that name the config's key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "data/bpe_trainer.h"
#include "tests/app/cli_runner.h"

namespace {

namespace fs = std::filesystem;

using moegrad::testing::CliRun;
using moegrad::testing::contains;
using moegrad::testing::moegrad;
using moegrad::testing::read_file;

// dir/corpus/<lang>/{train,heldout}: man-page-like pages in three "languages".
fs::path make_corpus(const std::string& tag) {
  const fs::path dir = fs::temp_directory_path() / ("moegrad_cli_run_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  for (const char* lang : {"en", "de", "uk"})
    for (const char* split : {"train", "heldout"}) {
      fs::create_directories(dir / "corpus" / lang / split);
      for (const char* topic : {"cat", "dog", "bird", "fish"}) {
        std::ostringstream page;
        page << topic << "(7)      Misc      " << topic << "(7)\n\nDESCRIPTION\n";
        for (int i = 0; i < 6; ++i)
          page << "       The " << topic << " of " << lang << " likes " << split
               << " places number " << i << ".  Every small " << topic << " " << lang
               << " sleeps during the long day.\n";
        std::ofstream(dir / "corpus" / lang / split / (std::string(topic) + ".7.txt")) << page.str();
      }
    }
  return dir;
}

// A pipeline config of a tiny model: a few steps per training stage.
std::string tiny_pipeline(const fs::path& dir) {
  return "[pipeline]\ndir = " + (dir / "run").string() +
         "\nlanguages = en,de,uk\ntarget = uk\nparents = uk:de\ndevice = cpu\n"
         "[data]\ncorpus = " + (dir / "corpus").string() + "\nvocab_size = 300\n"
         "[pretrain]\nmodel.vocab_size = 300\nmodel.hidden_size = 16\nmodel.intermediate_size = 8\n"
         "model.num_hidden_layers = 2\nmodel.num_attention_heads = 2\nmodel.num_key_value_heads = 2\n"
         "model.num_experts = 8\nmodel.num_experts_per_tok = 2\nmodel.max_position_embeddings = 32\n"
         "data.seq_len = 16\ntrain.steps = 3\ntrain.batch_size = 2\n"
         "[cpt]\ndata.seq_len = 16\ntrain.steps = 3\ntrain.batch_size = 2\neval.interval = 2\n"
         "eval.batches = 1\neval.routing_tokens = 64\n"
         "[analysis]\ntokens = 256\nshared_k = 1\n"
         "[adapt]\nmethods = ssft,aeft\ndata.seq_len = 16\ntrain.steps = 2\ntrain.batch_size = 2\n"
         "adapt.layers = 1\nadapt.shared_k = 1\n"
         "[benchmarks]\nitems = 4\nperplexity_tokens = 256\n"
         "[steering]\ntau = 0.05\n"
         "[profile]\nsteps = 1\nwarmup = 0\n";
}

TEST(CliRun, HelpDocumentsTheStagesAndEveryKey) {
  const CliRun r = moegrad("run --help");
  EXPECT_EQ(r.status, 0) << r.output;
  for (const char* key : {"pipeline.dir", "pipeline.languages", "pipeline.target", "pipeline.base",
                          "pipeline.stages", "data.corpus", "data.shards", "data.tokenizer",
                          "analysis.tokens", "adapt.methods", "benchmarks.multiblimp",
                          "benchmarks.belebele", "benchmarks.perplexity", "steering.tau",
                          "steering.model", "profile.steps", "--plan", "[cpt]"})
    EXPECT_TRUE(contains(r.output, key)) << key;
  EXPECT_TRUE(contains(moegrad("--help").output, "run ")) << "moegrad --help lists run";
}

TEST(CliRun, WholeExperimentWritesTheReportAndARerunSkipsIt) {
  const fs::path dir = make_corpus("whole");
  const fs::path cfg = dir / "pipeline.cfg";
  std::ofstream(cfg) << tiny_pipeline(dir);

  const CliRun plan = moegrad("run '" + cfg.string() + "' --plan");
  ASSERT_EQ(plan.status, 0) << plan.output;
  for (const char* stage : {"tokenizer", "shards-train", "shards-heldout", "pretrain", "cpt",
                            "analysis-base", "analysis-cpt", "adapt-ssft", "adapt-aeft", "proxies",
                            "benchmarks-base", "benchmarks-cpt", "benchmarks-adapt-ssft",
                            "steering-file", "steering", "profile"})
    EXPECT_TRUE(contains(plan.output, std::string(stage) + " ")) << stage << "\n" << plan.output;

  const CliRun r = moegrad("run '" + cfg.string() + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path run = dir / "run";
  for (const char* f : {"tokenizer.json", "shards/train/shards.json", "pretrain/model/config.json",
                        "pretrain/model/tokenizer.json", "cpt/routing/step-2/routing.json",
                        "configs/cpt.cfg", "analysis/cpt/routing.json", "adapt-ssft/trainable.json",
                        "benchmarks/adapt-aeft/results.json", "steering/steering.json",
                        "steering/results.json", "profile/profile.json", "stages/profile.json",
                        "figures/training_loss.svg", "report.md"})
    EXPECT_TRUE(fs::exists(run / f)) << f;
  // The stages are joined: CPT continues the pretrained model, adaptation the CPT model with
  // the CPT analysis's experts, on the target alone.
  const std::string cpt_cfg = read_file(run / "configs/cpt.cfg");
  EXPECT_TRUE(contains(cpt_cfg, "from = " + (run / "pretrain/model").string())) << cpt_cfg;
  EXPECT_TRUE(contains(cpt_cfg, "languages = en,de")) << cpt_cfg;
  const std::string ssft_cfg = read_file(run / "configs/adapt-ssft.cfg");
  EXPECT_TRUE(contains(ssft_cfg, "routing = " + (run / "analysis/cpt/routing.json").string()));
  EXPECT_TRUE(contains(ssft_cfg, "languages = uk")) << ssft_cfg;
  const nlohmann::json trainable = nlohmann::json::parse(read_file(run / "adapt-ssft/trainable.json"));
  EXPECT_EQ(trainable["adaptation"]["method"], "ssft");
  // uk's own experts when the analysis found some, else its parent's.
  const std::string of = trainable["adaptation"]["experts_of"];
  EXPECT_TRUE(of == "uk" || of == "de") << of;

  const std::string report = read_file(run / "report.md");
  for (const char* part : {"## Stages", "## Models and training", "## Selective adaptation to uk",
                           "## Benchmarks per language", "PROXY", "## Routing analysis",
                           "## Router steering", "## Profile of a training step", "MoE layers",
                           "analysis/cpt/figures/entropy.svg", "figures/training_loss.svg",
                           "| adapt-ssft |", "**ssft** trains"})
    EXPECT_TRUE(contains(report, part)) << part << "\n" << report;
  EXPECT_FALSE(contains(report, "not run")) << report;

  // A rerun does nothing but the report and the sweep of what a killed run left half-written;
  // a changed stage is refused, not mixed in.
  std::ofstream(run / "analysis/cpt/routing.json.moegrad-tmp.999999999") << "{";
  const CliRun again = moegrad("run '" + cfg.string() + "'");
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_TRUE(contains(again.output, "done before")) << again.output;
  EXPECT_TRUE(contains(again.output, "removed 1 unfinished file")) << again.output;
  EXPECT_FALSE(fs::exists(run / "analysis/cpt/routing.json.moegrad-tmp.999999999"));
  EXPECT_FALSE(contains(again.output, "moegrad train")) << again.output;
  const CliRun changed = moegrad("run '" + cfg.string() + "' --cpt.train.lr=0.5");
  EXPECT_EQ(changed.status, 1) << changed.output;
  EXPECT_TRUE(contains(changed.output, "stage cpt was run before with other settings"))
      << changed.output;
  fs::remove_all(dir);
}

// The papers' setting: an HF base model with its own tokenizer, no pretraining; the profile
// takes the base's shape from its config.json. A stage killed before its first checkpoint runs
// again from the start.
TEST(CliRun, StartsFromAnHfBaseModel) {
  const fs::path dir = make_corpus("hf");
  const fs::path base = dir / "base";
  fs::create_directories(base);
  const fs::path src = fs::path(MOEGRAD_SOURCE_DIR) / "tests/reference/olmoe/base";
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(src / f, base / f);
  std::vector<std::string> texts;
  for (const auto& e : fs::recursive_directory_iterator(dir / "corpus"))
    if (e.is_regular_file()) texts.push_back(read_file(e.path().string()));
  moegrad::data::BpeTrainerOptions opts;
  opts.vocab_size = 300;
  opts.special_tokens = {"<|endoftext|>"};
  moegrad::data::train_bpe(texts, opts).save((base / "tokenizer.json").string());
  const fs::path cfg = dir / "pipeline.cfg";
  std::ofstream(cfg) << "[pipeline]\ndir = " << (dir / "run").string()
                     << "\nlanguages = en,de,uk\ntarget = uk\ndevice = cpu\nbase = " << base.string()
                     << "\nstages = cpt,analysis,adapt,benchmarks,profile\n[data]\ncorpus = "
                     << (dir / "corpus").string()
                     << "\n[cpt]\ndata.seq_len = 16\ntrain.steps = 2\ntrain.batch_size = 2\n"
                        "[analysis]\ntokens = 128\n[adapt]\nmethods = aeft\ndata.seq_len = 16\n"
                        "train.steps = 1\ntrain.batch_size = 2\nadapt.layers = 1\n"
                        "[benchmarks]\nitems = 3\nperplexity_tokens = 128\n"
                        "[profile]\nsteps = 1\nwarmup = 0\n";
  const CliRun plan = moegrad("run '" + cfg.string() + "' --plan");
  ASSERT_EQ(plan.status, 0) << plan.output;
  EXPECT_FALSE(contains(plan.output, "pretrain")) << plan.output;
  EXPECT_FALSE(contains(plan.output, "train-tokenizer")) << plan.output;
  // As a CPT killed before its first checkpoint leaves it: nothing to resume, so it starts over.
  const fs::path run = dir / "run";
  fs::create_directories(run / "cpt" / "checkpoints");
  std::ofstream(run / "cpt" / "train.log") << "model: " << base.string() << "\n";
  const CliRun r = moegrad("run '" + cfg.string() + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "stopped before its first checkpoint")) << r.output;
  EXPECT_TRUE(contains(read_file((run / "configs/cpt.cfg").string()), "from = " + base.string()));
  EXPECT_TRUE(contains(read_file((run / "configs/profile.cfg").string()), "hidden_size = 64"));
  for (const char* f : {"cpt/model/tokenizer.json", "analysis/base/routing.json",
                        "benchmarks/base/results.json", "benchmarks/adapt-aeft/results.json",
                        "profile/profile.json"})
    EXPECT_TRUE(fs::exists(run / f)) << f;
  const std::string report = read_file((run / "report.md").string());
  EXPECT_TRUE(contains(report, "Base model: `" + base.string() + "`")) << report;
  EXPECT_TRUE(contains(report, "| base | (given) |")) << report;
  fs::remove_all(dir);
}

TEST(CliRun, BadConfigsNameTheKey) {
  const fs::path dir = make_corpus("bad");
  const fs::path cfg = dir / "pipeline.cfg";
  std::ofstream(cfg) << tiny_pipeline(dir);
  const std::string c = "run '" + cfg.string() + "' --plan ";
  const struct {
    std::string args;
    const char* message;
  } cases[] = {
      {"--cpt.train.lrr=1", "cpt.train.lrr: 'train.lrr' is not a key of moegrad train's config"},
      {"--cpt.model.from=x", "the pipeline sets model.from itself"},
      {"--cpt.train.lr=-1", "[cpt]: train.lr: must be a finite number > 0"},
      {"--pretrain.adapt.layers=1", "adaptation keys belong in [adapt]"},
      {"--pipeline.target=fi", "pipeline.target: 'fi' is not in pipeline.languages"},
      {"--pipeline.stages=cpt,fly", "unknown stage 'fly'"},
      {"--adapt.methods=seft,magic", "unknown method 'magic'"},
      {"--data.corpus=/nonexistent", "data.corpus: '/nonexistent' is not a folder"},
      {"--steering.model=adapt-full", "steering.model: 'adapt-full'"},
      {"--benchmarks.belebele=/nonexistent", "benchmarks.belebele"},
      {"--bogus.key=1", "unknown key 'bogus.key'"},
      // Values the steering, adapt and analysis stages would refuse only after every training
      // stage has run.
      {"--pipeline.parents=uk", "pipeline.parents: 'uk' is not child:parent"},
      {"--pipeline.parents=uk:ru,uk:pl", "pipeline.parents: 'uk' has two parents, ru and pl"},
      {"--pipeline.device=tpu",
       "pipeline.device: invalid device 'tpu': expected cpu, cuda, cuda:N or auto"},
      {"--steering.layers=3x", "steering.layers: must be FIRST-LAST (e.g. 5-10) or one layer"},
      {"--steering.layers=1-9", "steering.layers: 1-9 is past the model's 2 layers (0-1)"},
      {"--steering.language=fi", "steering.language: 'fi' is not in pipeline.languages"},
      {"--steering.reference=fi", "steering.reference: 'fi' is not in pipeline.languages"},
      {"--steering.tau=nan", "steering.tau: must be a finite number >= 0, got nan"},
      {"--steering.std=-1", "steering.std: must be a finite number >= 0, got -1"},
      {"--steering.delta=inf", "steering.delta: must be a finite number >= 0, got inf"},
      {"--steering.lambda=-0.5", "steering.lambda: must be a finite number >= 0, got -0.5"},
      {"--analysis.alpha=inf", "analysis.alpha: must be a finite number >= 0, got inf"},
      {"--analysis.seq_len=-1", "analysis.seq_len: must be at least 0, got -1"},
      {"--benchmarks.shots=-2", "benchmarks.shots: must be at least 0, got -2"},
      {"--profile.warmup=-1", "profile.warmup: must be at least 0, got -1"},
  };
  for (const auto& tc : cases) {
    const CliRun r = moegrad(c + tc.args);
    EXPECT_EQ(r.status, 1) << tc.args << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, tc.message)) << tc.args << "\n" << r.output;
  }
  const CliRun missing = moegrad("run /nonexistent.cfg");
  EXPECT_EQ(missing.status, 1);
  EXPECT_TRUE(contains(missing.output, "pipeline config '/nonexistent.cfg' does not exist"));
  EXPECT_EQ(moegrad("run").status, 2);
  fs::remove_all(dir);
}

}  // namespace
