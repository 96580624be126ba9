// `moegrad benchmark`: proxy sets made from held-out pages, then scored with MultiBLiMP,
// Belebele and perplexity through the command line; help, and errors that name the problem.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "data/bpe_trainer.h"
#include "tests/app/cli_runner.h"

namespace {

namespace fs = std::filesystem;

using moegrad::testing::CliRun;
using moegrad::testing::contains;
using moegrad::testing::moegrad;
using moegrad::testing::read_file;

// dir/corpus/<lang>/heldout with three man-page-like pages per language, and dir/model: the
// fixture model (no BOS or EOS id) with a tokenizer whose <|endoftext|> becomes the start token.
fs::path setup(const std::string& tag) {
  const fs::path dir =
      fs::temp_directory_path() / ("moegrad_cli_benchmark_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  std::vector<std::string> texts;
  for (const char* lang : {"en", "de"}) {
    fs::create_directories(dir / "corpus" / lang / "heldout");
    for (const char* topic : {"cat", "dog", "bird"}) {
      std::ostringstream page;
      page << topic << "(7)      Misc      " << topic << "(7)\n\nDESCRIPTION\n";
      for (int i = 0; i < 4; ++i)
        page << "       The " << topic << " of " << lang << " likes warm places number " << i
             << ".  Every small " << topic << " sleeps during the long day.\n";
      std::ofstream(dir / "corpus" / lang / "heldout" / (std::string(topic) + ".7.txt")) << page.str();
      texts.push_back(page.str());
    }
  }
  fs::create_directories(dir / "model");
  const fs::path src = fs::path(MOEGRAD_SOURCE_DIR) / "tests/reference/olmoe/base";
  fs::copy_file(src / "config.json", dir / "model" / "config.json");
  fs::copy_file(src / "model.safetensors", dir / "model" / "model.safetensors");
  moegrad::data::BpeTrainerOptions opts;
  opts.vocab_size = 300;
  opts.special_tokens = {"<|endoftext|>"};
  moegrad::data::train_bpe(texts, opts).save((dir / "model" / "tokenizer.json").string());
  return dir;
}

TEST(CliBenchmark, HelpDocumentsEveryFlag) {
  CliRun r = moegrad("benchmark --help");
  EXPECT_EQ(r.status, 0) << r.output;
  for (const char* flag : {"Usage: moegrad benchmark run",
                           "Usage: moegrad benchmark proxies",
                           "--model",
                           "--tokenizer",
                           "--out",
                           "--multiblimp",
                           "--belebele",
                           "--perplexity",
                           "--languages",
                           "--shots",
                           "--shot-seed",
                           "--prompt",
                           "--seq-len",
                           "--max-tokens",
                           "--batch-tokens",
                           "--start-id",
                           "--device",
                           "--corpus",
                           "--items",
                           "--seed",
                           "--passage-sentences",
                           "--min-words",
                           "--max-words",
                           "PROXY"})
    EXPECT_TRUE(contains(r.output, flag)) << flag << " missing from\n" << r.output;
  EXPECT_TRUE(contains(moegrad("--help").output, "benchmark"));
  EXPECT_EQ(moegrad("benchmark run --help").status, 0);
  EXPECT_EQ(moegrad("benchmark proxies -h").status, 0);
}

TEST(CliBenchmark, ProxiesThenScoresOfEveryBenchmark) {
  const fs::path dir = setup("run");
  const std::string proxies =
      "benchmark proxies --corpus '" + (dir / "corpus").string() + "' --items 5 --seed 2 --out ";
  CliRun r = moegrad(proxies + "'" + (dir / "p").string() + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "PROXY")) << r.output;
  ASSERT_EQ(moegrad(proxies + "'" + (dir / "q").string() + "'").status, 0);
  for (const char* f : {"proxy_multiblimp/en/data.tsv", "proxy_belebele/de.jsonl", "proxies.json"})
    EXPECT_EQ(read_file(dir / "p" / f), read_file(dir / "q" / f)) << f;

  const std::string run = "benchmark run --model '" + (dir / "model").string() + "' --device cpu --out '" +
                          (dir / "r").string() + "' --multiblimp '" +
                          (dir / "p" / "proxy_multiblimp").string() + "' --belebele '" +
                          (dir / "p" / "proxy_belebele").string() + "' --perplexity '" +
                          (dir / "corpus").string() + "' --shots 1 --seq-len 16";
  r = moegrad(run);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "multiblimp (PROXY) en")) << r.output;
  std::ifstream in(dir / "r" / "results.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["start_id"], 0);  // the tokenizer's <|endoftext|>: the model has no BOS or EOS
  EXPECT_EQ(j["multiblimp"]["en"]["proxy"], true);
  EXPECT_EQ(j["multiblimp"]["en"]["items"], 5);
  EXPECT_EQ(j["multiblimp"]["de"]["phenomena"]["proxy-adjacent-swap"]["items"], 5);
  EXPECT_EQ(j["belebele"]["de"]["shots"], 1);
  EXPECT_EQ(j["belebele"]["de"]["prompt"], "letters");
  EXPECT_GT(j["perplexity"]["en"]["tokens"].get<int64_t>(), 0);
  EXPECT_EQ(j["perplexity"]["en"]["documents"], 3);  // found under en/heldout
  auto header = [&](const char* file) {
    const std::string text = read_file(dir / "r" / file);
    return text.substr(0, text.find('\n'));
  };
  EXPECT_EQ(header("multiblimp.csv"), "language,proxy,pairs,acc,acc_norm,acc_token_norm,skipped");
  EXPECT_EQ(header("multiblimp_phenomena.csv"),
            "language,proxy,phenomenon,pairs,acc,acc_norm,acc_token_norm");
  EXPECT_EQ(header("belebele.csv"),
            "language,proxy,prompt,shots,questions,acc,acc_norm,acc_token_norm,truncated,skipped");
  EXPECT_EQ(header("perplexity.csv"), "language,documents,tokens,nll,ppl,bpb");

  // Pairs all longer than the model's positions are skipped: no accuracy, not "-nan".
  fs::create_directories(dir / "long" / "en");
  std::string words;
  for (int i = 0; i < 300; ++i) words += " cat";
  std::ofstream(dir / "long" / "en" / "data.tsv")
      << "sen\twrong_sen\n" << words << "\t" << words << " dog\n";
  r = moegrad("benchmark run --model '" + (dir / "model").string() + "' --device cpu --out '" +
              (dir / "rl").string() + "' --multiblimp '" + (dir / "long").string() + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "acc n/a  acc_norm n/a  acc_token_norm n/a  skipped 1")) << r.output;
  EXPECT_TRUE(contains(read_file(dir / "rl" / "multiblimp.csv"), "\nen,false,0,,,,1\n"));

  // A broken benchmark file fails naming the file, the line and the problem.
  std::ofstream(dir / "p" / "proxy_multiblimp" / "en" / "data.tsv", std::ios::app) << "only one field\n";
  r = moegrad(run);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "en/data.tsv:7: 1 fields, but the header has 6")) << r.output;
  r = moegrad(run + " --languages en,fi");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "--multiblimp: no file for 'fi'")) << r.output;
  fs::remove_all(dir);
}

TEST(CliBenchmark, BadUsageNamesTheProblem) {
  const fs::path dir = setup("usage");
  const std::string model =
      " --model '" + (dir / "model").string() + "' --out '" + (dir / "r").string() + "'";
  struct Case {
    std::string args;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"benchmark", 2, "missing subcommand"},
      {"benchmark frobnicate", 2, "unknown subcommand 'frobnicate'"},
      {"benchmark run" + model, 2, "give at least one of --multiblimp, --belebele and --perplexity"},
      {"benchmark run" + model + " --perplexity x --prompt mc", 2, "--prompt: Belebele prompt 'mc'"},
      {"benchmark run" + model + " --perplexity x --bogus", 2, "bogus"},
      {"benchmark run --out x --perplexity y", 2, "--model is required"},
      {"benchmark run" + model + " --multiblimp /nonexistent-dir", 1, "/nonexistent-dir is not a folder"},
      {"benchmark run" + model + " --perplexity '" + (dir / "corpus").string() + "' --languages fi", 1,
       "--perplexity: no documents for 'fi'"},
      {"benchmark run" + model + " --perplexity '" + (dir / "corpus/{lang}/heldout").string() + "'", 1,
       "give --languages"},
      // Once an error of the scorer's ("request 0: token id -1 is out of range") naming no flag.
      {"benchmark run" + model + " --perplexity '" + (dir / "corpus").string() + "' --start-id -1", 2,
       "--start-id -1 is not a token id of the model (0 to "},
      {"benchmark proxies --corpus x", 2, "--out is required"},
      {"benchmark proxies --corpus x --out y --items 0", 2,
       "--items and --passage-sentences must be positive"},
  };
  for (const Case& c : cases) {
    const CliRun r = moegrad(c.args);
    EXPECT_EQ(r.status, c.status) << c.args << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, c.message)) << c.args << "\n" << r.output;
  }
  fs::remove_all(dir);
}

TEST(CliBenchmark, SteerWritesASteeringFileFromAnAnalysis) {
  const fs::path dir = fs::temp_directory_path() / ("moegrad-steer-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // 3 layers of 4 experts, top-2: English uses expert 0 far above the mean expert in layer 1.
  std::ofstream(dir / "routing.json") << R"({"languages": ["en", "xx"], "layers": 3, "experts": 4,
    "top_k": 2, "english": "en", "per_layer": [
      {"layer": 0, "usage": {"en": [0.25, 0.25, 0.25, 0.25], "xx": [0.25, 0.25, 0.25, 0.25]}},
      {"layer": 1, "usage": {"en": [0.45, 0.3, 0.15, 0.1], "xx": [0.1, 0.3, 0.15, 0.45]}},
      {"layer": 2, "usage": {"en": [0.25, 0.25, 0.25, 0.25], "xx": [0.25, 0.25, 0.25, 0.25]}}]})";
  const std::string out = (dir / "steer.json").string();
  const CliRun r = moegrad("benchmark steer --analysis '" + (dir / "routing.json").string() +
                           "' --out '" + out + "' --layers 1-1");
  EXPECT_EQ(r.status, 0) << r.output;
  std::ifstream in(out);
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["promote_all"], nlohmann::json({0})) << j.dump();  // 0.9 against the mean's 0.5
  EXPECT_EQ(j["layers"], nlohmann::json({1, 1}));
  const CliRun bad = moegrad("benchmark steer --analysis x --out y --layers 3-x");
  EXPECT_EQ(bad.status, 2);
  EXPECT_TRUE(contains(bad.output, "--layers must be FIRST-LAST")) << bad.output;
  fs::remove_all(dir);
}

}  // namespace
