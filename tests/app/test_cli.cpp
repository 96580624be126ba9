// The moegrad command-line tool, run as a user runs it: exit statuses, help, errors that name
// the offending flag, and a demo whose loss goes down and repeats for a seed.
#include <gtest/gtest.h>

#include "data/bpe_trainer.h"
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "core/device.h"

namespace {

struct CliRun {
  int status;          // exit status; -1 when killed by a signal
  std::string output;  // stdout and stderr together
};

CliRun moegrad(const std::string& args) {
  std::string cmd = "'" MOEGRAD_CLI_PATH "' " + args + " 2>&1 </dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr) << cmd;
  if (!pipe) return {-1, ""};
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  int wstatus = pclose(pipe);
  return {WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1, out};
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

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
                     "' --out '" + (dir / "out.jsonl").string() + "'");
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
