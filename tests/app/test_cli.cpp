// The moegrad command-line tool, run as a user runs it: exit statuses, help, errors that name
// the offending flag, and a demo whose loss goes down and repeats for a seed.
#include <gtest/gtest.h>

#include "data/bpe_trainer.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "core/device.h"
#include "data/byte_level.h"
#include "tests/app/cli_runner.h"

namespace {

using moegrad::testing::CliRun;
using moegrad::testing::contains;
using moegrad::testing::moegrad;

std::vector<double> losses(const std::string& demo_output) {
  std::vector<double> out;
  std::regex line(R"(step +\d+ +loss ([0-9.eE+-]+))");
  for (std::sregex_iterator it(demo_output.begin(), demo_output.end(), line), end; it != end;
       ++it) {
    out.push_back(std::stod((*it)[1]));
  }
  return out;
}

TEST(Cli, HelpListsEveryCommand) {
  for (const char* flag : {"--help", "-h"}) {
    CliRun r = moegrad(flag);
    EXPECT_EQ(r.status, 0) << r.output;
    for (const char* command : {"info", "demo", "bench", "inspect", "score", "generate"})
      EXPECT_TRUE(contains(r.output, command)) << r.output;
  }
}

TEST(Cli, EachCommandHasHelp) {
  for (const char* command : {"info", "demo", "bench", "inspect", "score", "generate"}) {
    CliRun r = moegrad(std::string(command) + " --help");
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_TRUE(contains(r.output, std::string("Usage: moegrad ") + command)) << r.output;
  }
  EXPECT_TRUE(contains(moegrad("demo --help").output, "--steps"));
}

TEST(Cli, Version) {
  CliRun r = moegrad("--version");
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(contains(r.output, "moegrad 0.")) << r.output;
}

TEST(Cli, InfoReportsTheBuild) {
  CliRun r = moegrad("info");
  EXPECT_EQ(r.status, 0) << r.output;
  for (const char* key :
       {"build type:", "cuda built:", "cuda devices:", "openmp threads:", "openblas:"}) {
    EXPECT_TRUE(contains(r.output, key)) << key << " missing from\n" << r.output;
  }
}

// Usage mistakes exit 2 with a message naming what was wrong, followed by the usage.
TEST(Cli, BadUsageNamesTheProblem) {
  struct Case {
    const char* args;
    const char* names;
  };
  for (Case c :
       {Case{"", "missing command"}, Case{"frobnicate", "frobnicate"}, Case{"--bogus", "--bogus"},
        Case{"demo --bogus", "--bogus"}, Case{"demo --steps abc", "--steps"},
        Case{"demo --steps", "--steps"}, Case{"demo --steps 0", "--steps"},
        Case{"demo --lr=-1", "--lr"}, Case{"demo --lr 0", "--lr"},
        Case{"demo --device tpu", "--device"}, Case{"demo extra", "extra"},
        Case{"info --verbose", "--verbose"}, Case{"bench", "missing benchmark"},
        Case{"bench nosuch", "nosuch"}, Case{"bench --x gemm", "--x"}}) {
    CliRun r = moegrad(c.args);
    EXPECT_EQ(r.status, 2) << "moegrad " << c.args << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, c.names)) << "moegrad " << c.args << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, "Usage: moegrad")) << "moegrad " << c.args << "\n" << r.output;
  }
}

TEST(Cli, DemoLossDecreases) {
  CliRun r = moegrad("demo --steps 50 --device cpu");
  ASSERT_EQ(r.status, 0) << r.output;
  std::vector<double> l = losses(r.output);
  ASSERT_EQ(l.size(), 50u) << r.output;
  EXPECT_LT(l.back(), 0.05 * l.front()) << r.output;
  // The label noise (sd 0.1) bounds how far the loss can fall.
  EXPECT_LT(l.back(), 0.02) << r.output;
}

TEST(Cli, DemoIsDeterministicForASeed) {
  CliRun a = moegrad("demo --steps 5 --seed 7 --device cpu");
  CliRun b = moegrad("demo --steps 5 --seed 7 --device cpu");
  CliRun c = moegrad("demo --steps 5 --seed 8 --device cpu");
  ASSERT_EQ(a.status, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
  EXPECT_NE(a.output, c.output);
}

TEST(Cli, DemoOnCudaNeedsADevice) {
  CliRun r = moegrad("demo --steps 5 --device cuda");
  if (moegrad::cuda_available()) {
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(losses(r.output).size(), 5u) << r.output;
  } else {
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "no such CUDA device")) << r.output;
  }
}

// Every command that runs a model takes --device and checks it, as its other flags, before it
// reads anything (the paths below do not exist): a name that is no device is a usage error
// naming the flag, a CUDA device the machine lacks an error saying so.
TEST(Cli, FlagsAreCheckedBeforeAModelLoads) {
  const std::string none = "/nonexistent/moegrad-cli";
  for (const std::string& command :
       {std::string("demo"), "score --model " + none + " --input " + none + " --out " + none,
        "generate --model " + none + " --prompt hi", "trace --model " + none + " --text hi",
        "analyze --model " + none + " --data " + none + " --out " + none,
        "benchmark run --model " + none + " --out " + none + " --perplexity " + none}) {
    CliRun bad = moegrad(command + " --device gpu");
    EXPECT_EQ(bad.status, 2) << command << "\n" << bad.output;
    EXPECT_TRUE(contains(bad.output, "invalid value 'gpu' for option '--device'"))
        << command << "\n" << bad.output;
    CliRun absent = moegrad(command + " --device cuda:99");
    EXPECT_EQ(absent.status, 1) << command << "\n" << absent.output;
    EXPECT_TRUE(contains(absent.output, "cuda:99: no such CUDA device"))
        << command << "\n" << absent.output;
  }
  CliRun min_count = moegrad("analyze --model " + none + " --data " + none + " --out " + none +
                             " --overlap-min-count 0");
  EXPECT_EQ(min_count.status, 2) << min_count.output;
  EXPECT_TRUE(contains(min_count.output, "--overlap-min-count must be at least 1"))
      << min_count.output;
}

// `bench` hands its arguments to the benchmark program, or says that it is not built.
TEST(Cli, BenchRunsTheBuiltProgram) {
  std::filesystem::path bin =
      std::filesystem::path(MOEGRAD_CLI_PATH).parent_path().parent_path() / "bench" / "bench_gemm";
  CliRun r = moegrad("bench gemm --benchmark_list_tests=true");
  if (std::filesystem::exists(bin)) {
    EXPECT_EQ(r.status, 0) << r.output;
  } else {
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "is not built")) << r.output;
  }
}

TEST(Cli, InspectCountsParametersOfACheckpoint) {
  CliRun r = moegrad("inspect --model '" MOEGRAD_SOURCE_DIR "/tests/reference/olmoe/base'");
  ASSERT_EQ(r.status, 0) << r.output;
  // 2 layers, hidden 64, vocab 512, 8 experts of width 32, top-2 (tests/reference/olmoe/base).
  EXPECT_TRUE(contains(r.output, "total params:     198208")) << r.output;
  EXPECT_TRUE(contains(r.output, "active per token: 124480")) << r.output;
  EXPECT_TRUE(contains(r.output, "experts: 98304")) << r.output;
  EXPECT_EQ(moegrad("inspect").status, 2);
  CliRun missing = moegrad("inspect --model /nonexistent-dir");
  EXPECT_EQ(missing.status, 1);
  EXPECT_TRUE(contains(missing.output, "/nonexistent-dir/config.json")) << missing.output;
}

// A copy of the fixture model with a small tokenizer of our own (ids below its vocab of 512).
std::filesystem::path model_with_tokenizer() {
  namespace fs = std::filesystem;
  fs::path src = fs::path(MOEGRAD_SOURCE_DIR) / "tests/reference/olmoe/base";
  fs::path dir = fs::temp_directory_path() / ("moegrad_cli_model_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(src / "config.json", dir / "config.json");
  fs::copy_file(src / "model.safetensors", dir / "model.safetensors");
  moegrad::data::BpeTrainerOptions opts;
  opts.vocab_size = 300;
  moegrad::data::train_bpe(std::vector<std::string>{"the cat sat on the mat", "ein Hund"}, opts)
      .save((dir / "tokenizer.json").string());
  return dir;
}

TEST(Cli, ScoreWritesOneLinePerInput) {
  auto dir = model_with_tokenizer();
  std::ofstream(dir / "in.jsonl") << R"({"tokens": [5, 6, 7], "prefix": [1]})" << "\n"
                                  << R"({"text": "the cat", "prefix": "the"})" << "\n";
  CliRun r = moegrad("score --model '" + dir.string() + "' --input '" + (dir / "in.jsonl").string() +
                     "' --out '" + (dir / "out.jsonl").string() + "' --device cpu");
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream in(dir / "out.jsonl");
  int lines = 0;
  for (std::string l; std::getline(in, l); ++lines) EXPECT_TRUE(contains(l, "\"token_logprobs\":[")) << l;
  EXPECT_EQ(lines, 2);
  std::ofstream(dir / "bad.jsonl") << "{\n";
  CliRun bad = moegrad("score --model '" + dir.string() + "' --input '" + (dir / "bad.jsonl").string() +
                       "' --out '" + (dir / "o.jsonl").string() + "'");
  EXPECT_EQ(bad.status, 1);
  EXPECT_TRUE(contains(bad.output, "bad.jsonl:1: invalid JSON")) << bad.output;
  EXPECT_EQ(moegrad("score --model '" + dir.string() + "'").status, 2);
  std::filesystem::remove_all(dir);
}

TEST(Cli, GenerateIsDeterministicForASeed) {
  auto dir = model_with_tokenizer();
  std::string cmd = "generate --model '" + dir.string() + "' --prompt 'the cat' --max-new-tokens 5 --seed 3";
  CliRun a = moegrad(cmd), b = moegrad(cmd);
  ASSERT_EQ(a.status, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
  EXPECT_TRUE(a.output.rfind("the cat", 0) == 0) << a.output;
  EXPECT_EQ(moegrad(cmd + " --temperature -1").status, 2);
  std::filesystem::remove_all(dir);
}

}  // namespace

// `moegrad data`: token shards from folders of .txt files and JSONL, a tokenizer trained on
// documents, and the errors of each.
namespace {

namespace fs = std::filesystem;
using ::moegrad::data::TokenShard;
using ::moegrad::data::Tokenizer;

const std::string kTokenizer = MOEGRAD_SOURCE_DIR "/tests/reference/tokenizer/tokenizer.json";

// A fresh folder with two languages of documents: en as .txt files (one empty), de as JSONL.
fs::path corpus(const std::string& tag) {
  fs::path dir = fs::temp_directory_path() / ("moegrad_cli_data_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "en");
  std::ofstream(dir / "en" / "open.2.txt") << "open - open and possibly create a file\n";
  std::ofstream(dir / "en" / "ls.1.txt") << "ls - list directory contents\n";
  std::ofstream(dir / "en" / "blank.1.txt") << "\n";
  std::ofstream(dir / "de.jsonl") << R"({"text": "ls - Verzeichnisinhalte auflisten", "id": "ls.1"})" << "\n"
                                  << R"({"text": "Grüße aus Köln"})" << "\n";
  return dir;
}

std::string build_args(const fs::path& dir, const fs::path& out) {
  return "data build --tokenizer '" + kTokenizer + "' --input en='" + (dir / "en").string() +
         "' --input de='" + (dir / "de.jsonl").string() + "' --out '" + out.string() + "'";
}

TEST(CliData, HelpDocumentsEverySubcommand) {
  CliRun all = moegrad("--help");
  EXPECT_TRUE(contains(all.output, "data")) << all.output;
  CliRun r = moegrad("data --help");
  EXPECT_EQ(r.status, 0) << r.output;
  for (const char* part : {"Usage: moegrad data", "data build", "data train-tokenizer", "data info",
                           "--tokenizer", "--input", "--out", "--eos", "--threads", "--vocab-size"})
    EXPECT_TRUE(contains(r.output, part)) << part << " missing from\n" << r.output;
  CliRun build = moegrad("data build --help");
  EXPECT_EQ(build.status, 0) << build.output;
  EXPECT_TRUE(contains(build.output, "Usage: moegrad data build")) << build.output;
}

TEST(CliData, BuildWritesOneShardPerLanguage) {
  fs::path dir = corpus("build");
  CliRun r = moegrad(build_args(dir, dir / "out") + " --eos");
  ASSERT_EQ(r.status, 0) << r.output;
  const Tokenizer tok = Tokenizer::from_file(kTokenizer);
  const int32_t eos = *tok.token_to_id("<|endoftext|>");

  TokenShard en = TokenShard::open((dir / "out" / "en.shard").string());
  EXPECT_EQ(en.language(), "en");
  EXPECT_EQ(en.vocab_size(), tok.vocab_size());
  ASSERT_EQ(en.num_documents(), 2);  // the blank page is skipped
  EXPECT_EQ(en.document_name(0), "ls.1");
  EXPECT_EQ(en.document_name(1), "open.2");
  std::vector<int32_t> expected = tok.encode("ls - list directory contents\n");
  expected.push_back(eos);
  auto [begin, end] = en.document_range(0);
  std::vector<int32_t> got(static_cast<size_t>(end - begin));
  en.copy_tokens(begin, end - begin, got.data());
  EXPECT_EQ(got, expected);

  TokenShard de = TokenShard::open((dir / "out" / "de.shard").string());
  ASSERT_EQ(de.num_documents(), 2);
  EXPECT_EQ(de.document_name(0), "ls.1");
  EXPECT_EQ(de.document_name(1), "de.jsonl:2");

  std::ifstream summary(dir / "out" / "shards.json");
  const auto j = nlohmann::json::parse(summary);
  EXPECT_EQ(j["vocab_size"], tok.vocab_size());
  EXPECT_EQ(j["languages"]["en"]["documents"], 2);
  EXPECT_EQ(j["languages"]["en"]["skipped_empty"], 1);
  EXPECT_EQ(j["languages"]["de"]["tokens"], de.num_tokens());

  CliRun info = moegrad("data info '" + (dir / "out" / "en.shard").string() + "'");
  EXPECT_EQ(info.status, 0) << info.output;
  EXPECT_TRUE(contains(info.output, "documents:  2")) << info.output;
  fs::remove_all(dir);
}

TEST(CliData, ShardsDoNotDependOnTheThreadCount) {
  fs::path dir = corpus("threads");
  ASSERT_EQ(moegrad(build_args(dir, dir / "one") + " --threads 1").status, 0);
  ASSERT_EQ(moegrad(build_args(dir, dir / "three") + " --threads 3").status, 0);
  for (const char* shard : {"en.shard", "de.shard"}) {
    std::ifstream a(dir / "one" / shard, std::ios::binary), b(dir / "three" / shard, std::ios::binary);
    std::string sa((std::istreambuf_iterator<char>(a)), {}), sb((std::istreambuf_iterator<char>(b)), {});
    EXPECT_FALSE(sa.empty());
    EXPECT_EQ(sa, sb) << shard;
  }
  fs::remove_all(dir);
}

TEST(CliData, BadUsageNamesTheProblem) {
  fs::path dir = corpus("usage");
  const std::string tok = " --tokenizer '" + kTokenizer + "' --out '" + (dir / "out").string() + "'";
  struct Case {
    std::string args;
    const char* names;
  };
  for (const Case& c : {Case{"data", "missing subcommand"}, Case{"data frob", "frob"},
                        Case{"data build --bogus", "--bogus"}, Case{"data build" + tok, "--input is required"},
                        Case{"data build --input en=x --out y", "--tokenizer is required"},
                        Case{"data build" + tok + " --input nolang", "'nolang' is not LANG=PATH"},
                        Case{"data build" + tok + " --input =x", "'=x' is not LANG=PATH"},
                        Case{"data build" + tok + " --input 'a/b=x'", "'a/b=x' is not LANG=PATH"},
                        Case{"data build" + tok + " --input en=x --threads 0", "--threads"},
                        Case{"data train-tokenizer --input x --out y", "--vocab-size is required"},
                        Case{"data train-tokenizer --input x --out y --vocab-size 100", "--vocab-size"},
                        Case{"data info", "missing shard"}}) {
    CliRun r = moegrad(c.args);
    EXPECT_EQ(r.status, 2) << "moegrad " << c.args << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, c.names)) << "moegrad " << c.args << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, "Usage: moegrad data")) << "moegrad " << c.args << "\n" << r.output;
  }
  fs::remove_all(dir);
}

TEST(CliData, FailuresNameTheFile) {
  fs::path dir = corpus("fail");
  const std::string base = "data build --tokenizer '" + kTokenizer + "' --out '" + (dir / "out").string() + "'";
  const std::string missing = (dir / "missing").string();
  CliRun r = moegrad(base + " --input en='" + missing + "'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, missing + " does not exist")) << r.output;

  std::ofstream(dir / "bad.jsonl") << R"({"text": "fine"})" << "\n" << R"({"txt": "typo"})" << "\n";
  r = moegrad(base + " --input en='" + (dir / "bad.jsonl").string() + "'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "bad.jsonl:2: missing \"text\"")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "out" / "en.shard"));  // a failed build leaves no shard

  r = moegrad("data build --tokenizer /nonexistent/tok.json --out x --input en='" + (dir / "en").string() + "'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "/nonexistent/tok.json")) << r.output;

  r = moegrad(base + " --input en='" + (dir / "en").string() + "' --eos --eos-token '<nope>'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "<nope>")) << r.output;

  r = moegrad("data info '" + missing + ".shard'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, missing + ".shard")) << r.output;
  fs::remove_all(dir);
}

TEST(CliData, TrainTokenizerWritesALoadableTokenizer) {
  fs::path dir = corpus("bpe");
  const fs::path out = dir / "tokenizer.json";
  CliRun r = moegrad("data train-tokenizer --input '" + (dir / "en").string() + "' --input '" +
                     (dir / "de.jsonl").string() + "' --vocab-size 300 --out '" + out.string() + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  const Tokenizer tok = Tokenizer::from_file(out.string());
  EXPECT_EQ(tok.vocab_size(), 300);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 0);
  const std::string text = "ls - list Grüße";
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  EXPECT_LT(tok.encode("list directory contents").size(), std::string("list directory contents").size());
  fs::remove_all(dir);
}

}  // namespace

namespace {

// A tiny end-to-end training run through the CLI: the shards of CliData's corpus, a 2-layer
// model, two steps.
TEST(CliTrain, HelpDocumentsEveryConfigKey) {
  CliRun r = moegrad("train --help");
  EXPECT_EQ(r.status, 0) << r.output;
  for (const char* key : {"--config", "--resume", "--model.from", "--data.train", "--data.weights",
                          "--train.lr", "--train.schedule", "--train.group", "--freeze.experts",
                          "--freeze.rows", "--freeze.restrict_router", "--eval.interval",
                          "--run.keep"})
    EXPECT_TRUE(contains(r.output, key)) << key << " missing from\n" << r.output;
  EXPECT_TRUE(contains(moegrad("--help").output, "train"));
}

// A tiny model's training config over the shards of corpus() built into dir/shards; the run
// goes to dir/runs/t.
fs::path tiny_config(const fs::path& dir, int steps) {
  const fs::path cfg = dir / "tiny.cfg";
  std::ofstream(cfg) << "[model]\nvocab_size = 1024\nhidden_size = 16\nintermediate_size = 8\n"
                        "num_hidden_layers = 2\nnum_attention_heads = 2\nnum_key_value_heads = 2\n"
                        "num_experts = 4\nnum_experts_per_tok = 2\nmax_position_embeddings = 64\n"
                        "[data]\ntrain = " << (dir / "shards").string()
                     << "\nheldout = " << (dir / "shards").string()
                     << "\ntokenizer = " << kTokenizer << "\nseq_len = 8\n"
                        "[train]\ndevice = cpu\nsteps = " << steps << "\nbatch_size = 2\n"
                        "[run]\ndir = " << (dir / "runs").string() << "\nname = t\n";
  return cfg;
}

TEST(CliTrain, TrainsAndResumesFromAConfig) {
  fs::path dir = corpus("train");
  ASSERT_EQ(moegrad(build_args(dir, dir / "shards")).status, 0);
  const fs::path cfg = tiny_config(dir, 2);
  CliRun r = moegrad("train --config '" + cfg.string() + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "trainable parameters:")) << r.output;
  EXPECT_TRUE(fs::exists(dir / "runs" / "t" / "model" / "model.safetensors"));
  {
    // The final evaluation: loss, perplexity and bits per byte for each held-out language.
    std::ifstream metrics(dir / "runs" / "t" / "metrics.jsonl");
    nlohmann::json last;
    for (std::string line; std::getline(metrics, line);) last = nlohmann::json::parse(line);
    ASSERT_EQ(last["type"], "eval") << last.dump();
    for (const char* lang : {"de", "en"}) {
      const auto& e = last["languages"][lang];
      EXPECT_GT(e["bpb"].get<double>(), 0.0) << last.dump();
      EXPECT_NEAR(e["ppl"].get<double>(), std::exp(e["loss"].get<double>()), 1e-9 * e["ppl"].get<double>());
    }
  }
  {
    // Peak memory by category: the model's weights, the gradients and Adam moments of a step
    // (the peak itself may fall in a forward, while no gradient exists).
    std::ifstream in(dir / "runs" / "t" / "summary.json");
    const nlohmann::json summary = nlohmann::json::parse(in);
    const nlohmann::json& peak = summary["peak_device_memory"];
    const nlohmann::json& own = summary["peak_device_memory_by_category"];
    for (const char* c : {"weights", "gradients", "optimizer state", "activations"})
      EXPECT_GT(own[c].get<int64_t>(), 0) << c << ": " << own.dump();
    for (const char* c : {"weights", "optimizer state", "activations"})
      EXPECT_GT(peak[c].get<int64_t>(), 0) << c << ": " << peak.dump();
    EXPECT_TRUE(peak.contains("workspace")) << peak.dump();  // an op's scratch, 0 at times
    EXPECT_GE(peak["total"].get<int64_t>(), 4 * peak["weights"].get<int64_t>()) << peak.dump();
  }
  // Continuing to more steps picks up from the checkpoint of step 2.
  r = moegrad("train --config '" + cfg.string() + "' --resume --train.steps=3");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "resumed from")) << r.output;
  // Not without --resume: the run directory is never overwritten.
  r = moegrad("train --config '" + cfg.string() + "'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "already holds a run")) << r.output;

  // A run that does not fit its memory stops saying what it asked for and what is in use.
  r = moegrad("train --config '" + cfg.string() + "' --run.name=oom --train.memory_limit=100KiB");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "out of memory on cpu: tried to allocate ")) << r.output;
  EXPECT_TRUE(contains(r.output, "the memory limit set for cpu is 100.00 KiB")) << r.output;
  r = moegrad("train --config '" + cfg.string() + "' --run.name=oom2 --train.memory_limit=lots");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "train.memory_limit: 'lots' is not a size")) << r.output;

  r = moegrad("train --config '" + cfg.string() + "' --train.lrr=1");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "unknown key 'train.lrr'")) << r.output;
  r = moegrad("train --config '" + (dir / "nope.cfg").string() + "'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "nope.cfg' does not exist")) << r.output;
  r = moegrad("train");
  EXPECT_EQ(r.status, 2) << r.output;
  fs::remove_all(dir);
}

TEST(CliTrain, BenchConfigPrintsTokensPerSecondLast) {
  const std::string cfg = std::string(MOEGRAD_SOURCE_DIR) + "/experiments/bench/tiny.cfg";
  CliRun r = moegrad("bench --config '" + cfg + "' --steps 1 --warmup 0");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(tokens_per_s=[0-9.]+\n$)"))) << r.output;
  EXPECT_TRUE(contains(r.output, "ratio to GEMM")) << r.output;
  EXPECT_TRUE(contains(r.output, "float32 GEMM rate")) << r.output;
  // Config keys can be overridden: a one-layer model in bf16, with its inference peak.
  r = moegrad("bench --config '" + cfg +
              "' --steps 1 --warmup 0 --model.num_hidden_layers=1 --train.precision=bf16 "
              "--inference");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "1 layers")) << r.output;
  EXPECT_TRUE(contains(r.output, "bfloat16 GEMM rate")) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(training peak / inference peak: [0-9.]+)")))
      << r.output;
  r = moegrad("bench --config '" + cfg + "' --steps 1 --train.precision=f16");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "train.precision: 'f16': expected f32 or bf16")) << r.output;
}

TEST(CliAnalyze, WritesRoutingStatisticsAndTheirAnalysis) {
  fs::path dir = corpus("analyze");
  ASSERT_EQ(moegrad(build_args(dir, dir / "shards")).status, 0);
  const fs::path cfg = tiny_config(dir, 1);
  ASSERT_EQ(moegrad("train --config '" + cfg.string() + "'").status, 0);
  const std::string model = (dir / "runs" / "t" / "model").string();
  const std::string base = "analyze --model '" + model + "' --data '" + (dir / "shards").string() +
                           "' --out '" + (dir / "an").string() + "' --device cpu";
  CliRun r = moegrad(base + " --seq-len 4");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "specialization")) << r.output;
  // One pair of languages has no correlation: said so, not printed as "nan".
  EXPECT_TRUE(contains(r.output, "Pearson r: jaccard undefined, weighted undefined")) << r.output;
  std::ifstream in(dir / "an" / "routing.json");
  const nlohmann::json a = nlohmann::json::parse(in);
  EXPECT_EQ(a["languages"], nlohmann::json({"de", "en"}));
  EXPECT_EQ(a["per_layer"].size(), 2u);
  // "ls.1" exists in both languages: an aligned pair.
  EXPECT_GE(a["aligned"]["de"]["documents"].get<int64_t>(), 1) << a["aligned"].dump();
  EXPECT_EQ(a["vocabulary_overlap"]["pairs"].size(), 1u);  // de-en
  EXPECT_GE(a["vocabulary_overlap"]["pairs"][0]["weighted"].get<double>(), 0.0);
  for (const char* f :
       {"routing_stats.json", "layers.csv", "summary.csv", "experts.csv", "overlap.csv"})
    EXPECT_TRUE(fs::exists(dir / "an" / f)) << f;
  std::ifstream layers(dir / "an" / "layers.csv");
  std::string header;
  std::getline(layers, header);
  EXPECT_EQ(header, "layer,language,entropy,jsd_from_english,consistency,aligned_jsd,"
                    "aligned_normalized_jsd");

  r = moegrad(base + " --seq-len 4 --languages en,fi");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "no shard for 'fi'")) << r.output;
  r = moegrad(base + " --seq-len 65");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "max_position_embeddings, 64")) << r.output;
  r = moegrad(base + " --seq-len 4 --parents uk-ru");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "'uk-ru' is not child:parent")) << r.output;
  EXPECT_EQ(moegrad("analyze --data x --out y").status, 2);  // --model is required
  // The trained model carries the run's tokenizer; a copy without it needs --tokenizer.
  EXPECT_TRUE(fs::exists(fs::path(model) / "tokenizer.json"));
  const fs::path bare = dir / "bare";
  fs::create_directories(bare);
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(fs::path(model) / f, bare / f);
  r = moegrad("trace --model '" + bare.string() + "' --text 'ls - list'");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "pass --tokenizer FILE")) << r.output;
  // A byte-level token can hold part of a character: its label escapes the bytes.
  r = moegrad("trace --model '" + model + "' --text 'ls - list é' --json '" +
              (dir / "trace.json").string() + "' --svg '" + (dir / "trace.svg").string() + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "layer 1\n")) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\"ls\"|\"l\")"))) << r.output;
  std::ifstream trace(dir / "trace.json");
  EXPECT_EQ(nlohmann::json::parse(trace)["layers"].size(), 2u);
  const std::string svg = moegrad::testing::read_file((dir / "trace.svg").string());
  EXPECT_TRUE(contains(svg, "first expert per layer")) << svg.substr(0, 400);
  EXPECT_TRUE(std::regex_search(svg, std::regex(">e[0-9]+<"))) << "cells name their expert";
  EXPECT_EQ(moegrad::data::utf8_invalid_at(svg), std::string::npos) << "the SVG is valid UTF-8";
  fs::remove_all(dir);
}

}  // namespace
