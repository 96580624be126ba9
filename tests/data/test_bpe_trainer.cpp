// The BPE trainer against HF's BpeTrainer on the fixture corpus, and its output in use.
#include <filesystem>
#include <fstream>

#include "data/bpe_trainer.h"
#include "tests/data/tokenizer_fixtures.h"
#include "tests/testing.h"

namespace moegrad::data {
namespace {

using testing::tokenizer_fixture_json;

BpeTrainerOptions fixture_options(const nlohmann::json& corpus) {
  BpeTrainerOptions opts;
  opts.vocab_size = corpus["vocab_size"];
  opts.min_frequency = corpus["min_frequency"];
  opts.special_tokens = corpus["special_tokens"].get<std::vector<std::string>>();
  return opts;
}

TEST(BpeTrainer, SameMergesAndVocabAsHf) {
  const auto corpus = tokenizer_fixture_json("corpus.json");
  const Tokenizer tok = train_bpe(corpus["texts"].get<std::vector<std::string>>(), fixture_options(corpus));
  std::vector<std::pair<std::string, std::string>> hf_merges;
  for (const auto& m : corpus["merges"]) hf_merges.emplace_back(m[0], m[1]);
  EXPECT_EQ(tok.config().merges, hf_merges);
  const auto hf_vocab = corpus["vocab"].get<std::unordered_map<std::string, int32_t>>();
  EXPECT_EQ(tok.config().vocab, hf_vocab);
}

TEST(BpeTrainer, TrainedTokenizerEncodesLikeHf) {
  const auto corpus = tokenizer_fixture_json("corpus.json");
  const Tokenizer tok = train_bpe(corpus["texts"].get<std::vector<std::string>>(), fixture_options(corpus));
  // The fixture tokenizer also has added runs of spaces; compare on text without them.
  for (const auto& c : tokenizer_fixture_json("cases.json")) {
    const std::string text = c["text"];
    if (text.find("  ") != std::string::npos) continue;
    EXPECT_EQ(tok.encode(text), c["ids"].get<std::vector<int32_t>>()) << "text: " << text;
    EXPECT_EQ(tok.decode(tok.encode(text)), c["decoded"].get<std::string>());
  }
}

TEST(BpeTrainer, VocabSizeSpecialsAndSaveReload) {
  BpeTrainerOptions opts;
  opts.vocab_size = 270;
  opts.special_tokens = {"<|endoftext|>"};
  const Tokenizer tok = train_bpe({"low lower lowest newer newest wider widest", "low low low"}, opts);
  EXPECT_EQ(tok.vocab_size(), 270);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 0);
  EXPECT_EQ(tok.config().merges.front(), std::make_pair(std::string("l"), std::string("o")));
  const auto path = std::filesystem::temp_directory_path() / "moegrad_test_bpe_trained.json";
  tok.save(path.string());
  const Tokenizer again = Tokenizer::from_file(path.string());
  std::filesystem::remove(path);
  const std::string text = "lowest<|endoftext|>newer";
  EXPECT_EQ(again.encode(text), tok.encode(text));
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  EXPECT_EQ(tok.encode(text)[tok.encode(text).size() - 3], 0);
}

TEST(BpeTrainer, MinFrequencyStopsEarly) {
  BpeTrainerOptions opts;
  opts.vocab_size = 1000;
  opts.min_frequency = 3;
  const Tokenizer tok = train_bpe({"ab ab ab cd cd"}, opts);
  EXPECT_EQ(tok.vocab_size(), 256 + static_cast<int32_t>(tok.config().merges.size()));
  for (const auto& [a, b] : tok.config().merges) EXPECT_NE(a + b, "cd");
}

TEST(BpeTrainer, TrainsFromFilesLineByLine) {
  const auto path = std::filesystem::temp_directory_path() / "moegrad_test_bpe_corpus.txt";
  {
    std::ofstream out(path);
    out << "hello hello\nworld world\nhello";
  }
  BpeTrainerOptions opts;
  opts.vocab_size = 270;
  const Tokenizer from_files = train_bpe_files({path.string()}, opts);
  const Tokenizer from_texts = train_bpe({"hello hello\n", "world world\n", "hello"}, opts);
  std::filesystem::remove(path);
  EXPECT_EQ(from_files.config().merges, from_texts.config().merges);
  testing::expect_error([&] { train_bpe_files({"/nonexistent/corpus.txt"}, opts); },
                        "cannot open '/nonexistent/corpus.txt'");
}

}  // namespace
}  // namespace moegrad::data
