#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/io/safetensors.h"
#include "core/ops/softmax.h"
#include "data/bpe_trainer.h"
#include "eval/score.h"
#include "moe/checkpoint.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;

const std::string kBase = std::string(MOEGRAD_SOURCE_DIR) + "/tests/reference/olmoe/base";

std::vector<int32_t> row_ids(const Tensor& ids, int64_t b) {
  std::vector<int64_t> v = ids.select(0, b).to_vector<int64_t>();
  return std::vector<int32_t>(v.begin(), v.end());
}

// log p(ids[t+1] | ids[:t+1]) for t < 15 from the logits transformers computed.
std::vector<double> hf_logprobs(const SafetensorsFile& expected, int64_t b) {
  Tensor lp = log_softmax(expected.tensor("nomask.logits").select(0, b).to(DType::F64), -1);
  std::vector<int32_t> ids = row_ids(expected.tensor("input_ids"), b);
  std::vector<double> out;
  for (size_t t = 0; t + 1 < ids.size(); ++t) out.push_back(lp.select(0, t).select(0, ids[t + 1]).item());
  return out;
}

TEST(Score, MatchesTransformersLogProbabilities) {
  auto model = load_olmoe(kBase);
  SafetensorsFile expected(kBase + "/expected.safetensors");
  for (int64_t b = 0; b < 2; ++b) {
    std::vector<int32_t> ids = row_ids(expected.tensor("input_ids"), b);
    std::vector<double> want = hf_logprobs(expected, b);
    ScoreResult r = score_tokens(*model, {ids[0]}, std::vector<int32_t>(ids.begin() + 1, ids.end()));
    ASSERT_EQ(r.token_logprobs.size(), want.size());
    double sum = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(r.token_logprobs[i], want[i], 1e-4 * std::fabs(want[i]) + 1e-5) << "token " << i;
      sum += want[i];
    }
    EXPECT_NEAR(r.logprob, sum, 1e-4 * std::fabs(sum));
  }
}

// The fixture model with an EOS id (its config.json has none), for the default context.
std::unique_ptr<OlmoeForCausalLM> load_with_eos(int64_t eos) {
  auto loaded = load_olmoe(kBase);
  OlmoeConfig c = loaded->config();
  c.eos_token_id = eos;
  auto model = std::make_unique<OlmoeForCausalLM>(c);
  auto src = loaded->hf_named_tensors(), dst = model->hf_named_tensors();
  for (size_t i = 0; i < src.size(); ++i) dst[i].second.copy_(src[i].second);
  return model;
}

TEST(Score, EmptyContextConditionsOnEos) {
  expect_error([&] { score_tokens(*load_olmoe(kBase), {}, {5}); }, "neither a BOS nor an EOS id");
  auto model = load_with_eos(50);
  int32_t eos = int32_t(*model->config().eos_token_id);
  ScoreResult implicit = score_tokens(*model, {}, {5, 6, 7});
  ScoreResult explicit_eos = score_tokens(*model, {eos}, {5, 6, 7});
  EXPECT_EQ(implicit.token_logprobs, explicit_eos.token_logprobs);
  expect_error([&] { score_tokens(*model, {}, {5, 9999}); }, "token id 9999 is out of range [0, 512)");
}

TEST(Score, JsonlLinesWithTokensTextAndPrefix) {
  auto model = load_with_eos(50);
  data::BpeTrainerOptions opts;
  opts.vocab_size = 300;
  data::Tokenizer tok = data::train_bpe(std::vector<std::string>{"the cat sat on the mat", "der Hund"}, opts);
  fs::path dir = fs::temp_directory_path() / ("moegrad_score_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "in.jsonl") << R"({"tokens": [5, 6, 7]})" << "\n\n"
                                  << R"({"tokens": [6, 7], "prefix": [50, 5]})" << "\n"
                                  << R"({"text": "the cat", "prefix": "the"})" << "\n";
  score_jsonl(*model, &tok, (dir / "in.jsonl").string(), (dir / "out.jsonl").string());
  std::ifstream in(dir / "out.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(lines.size(), 3u);
  ScoreResult full = score_tokens(*model, {}, {5, 6, 7});
  EXPECT_DOUBLE_EQ(lines[0]["logprob"].get<double>(), full.logprob);
  EXPECT_EQ(lines[0]["tokens"].get<std::vector<int32_t>>(), (std::vector<int32_t>{5, 6, 7}));
  // The prefix (EOS made explicit, then 5) conditions but is not scored.
  EXPECT_NEAR(lines[1]["logprob"].get<double>(), full.token_logprobs[1] + full.token_logprobs[2], 1e-5);
  EXPECT_EQ(lines[2]["tokens"].get<std::vector<int32_t>>(), tok.encode("the cat"));

  std::ofstream(dir / "bad.jsonl") << R"({"tokens": [1]})" << "\n" << "{not json\n";
  expect_error([&] { score_jsonl(*model, &tok, (dir / "bad.jsonl").string(), (dir / "o.jsonl").string()); },
               "bad.jsonl:2: invalid JSON");
  std::ofstream(dir / "bad.jsonl") << R"({"text": "x"})" << "\n";
  expect_error([&] { score_jsonl(*model, nullptr, (dir / "bad.jsonl").string(), (dir / "o.jsonl").string()); },
               "bad.jsonl:1: \"text\" is text, which needs a tokenizer.json");
  std::ofstream(dir / "bad.jsonl") << R"({"tokens": [1], "txt": 2})" << "\n";
  expect_error([&] { score_jsonl(*model, nullptr, (dir / "bad.jsonl").string(), (dir / "o.jsonl").string()); },
               "bad.jsonl:1: unknown field \"txt\"");
  std::ofstream(dir / "bad.jsonl") << R"({"tokens": [1, 600]})" << "\n";
  expect_error([&] { score_jsonl(*model, nullptr, (dir / "bad.jsonl").string(), (dir / "o.jsonl").string()); },
               "bad.jsonl:1: score: token id 600 is out of range");
  // 2^32 + 1 would wrap to token 1 if read as int32.
  for (const char* id : {"4294967297", "-1", "1.0"}) {
    std::ofstream(dir / "bad.jsonl") << R"({"tokens": [5, )" << id << "]}\n";
    expect_error(
        [&] { score_jsonl(*model, nullptr, (dir / "bad.jsonl").string(), (dir / "o.jsonl").string()); },
        std::string("bad.jsonl:1: \"tokens\" must hold token ids (integers from 0 to 2^31 - 1), found ") +
            id);
  }
  EXPECT_FALSE(fs::exists(dir / "o.jsonl"));  // nothing half-written on error
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moegrad
