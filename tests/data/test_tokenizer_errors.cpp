// Malformed tokenizer.json files: each gives a moegrad::Error naming the file and the field.
#include <random>

#include "data/tokenizer.h"
#include "tests/data/tokenizer_fixtures.h"
#include "tests/testing.h"

namespace moegrad::data {
namespace {

using nlohmann::json;

// A minimal valid file: bytes 'a', 'b' and their merge.
json minimal() {
  json vocab = json::object();
  for (int b = 33; b <= 126; ++b) vocab[std::string(1, static_cast<char>(b))] = b - 33;
  vocab["ab"] = 94;
  return {{"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"added_tokens", json::array({{{"id", 95}, {"content", "<|endoftext|>"}, {"special", true}}})},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"a b"})}}}};
}

void expect_load_error(const json& doc, const std::string& needle) {
  testing::expect_error([&] { Tokenizer::from_json(doc.dump(), "bad.json"); }, needle);
}

TEST(TokenizerErrors, MinimalFileLoads) {
  const Tokenizer tok = Tokenizer::from_json(minimal().dump());
  EXPECT_EQ(tok.encode("ab<|endoftext|>"), (std::vector<int32_t>{94, 95}));
}

TEST(TokenizerErrors, MergesAsPairsLoadToo) {
  json doc = minimal();
  doc["model"]["merges"] = json::array({json::array({"a", "b"})});
  EXPECT_EQ(Tokenizer::from_json(doc.dump()).encode("ab"), std::vector<int32_t>{94});
}

TEST(TokenizerErrors, SequenceNormalizerAndPreTokenizerLoad) {
  json doc = minimal();
  doc["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array({{{"type", "NFC"}}})}};
  doc["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({minimal()["pre_tokenizer"]})}};
  EXPECT_EQ(Tokenizer::from_json(doc.dump()).encode("ab"), std::vector<int32_t>{94});
}

TEST(TokenizerErrors, MissingFile) {
  testing::expect_error([] { Tokenizer::from_file("/nonexistent/tokenizer.json"); },
                        "cannot open '/nonexistent/tokenizer.json'");
}

TEST(TokenizerErrors, BadJson) {
  testing::expect_error([] { Tokenizer::from_json("{\"model\": [", "bad.json"); },
                        "bad.json: field '(document)': expected valid JSON");
}

TEST(TokenizerErrors, NotAnObject) {
  testing::expect_error([] { Tokenizer::from_json("[1, 2]", "bad.json"); }, "expected a JSON object");
}

TEST(TokenizerErrors, MissingModel) {
  json doc = minimal();
  doc.erase("model");
  expect_load_error(doc, "bad.json: field 'model': missing");
}

TEST(TokenizerErrors, UnknownModelType) {
  json doc = minimal();
  doc["model"]["type"] = "WordPiece";
  expect_load_error(doc, "field 'model.type': expected BPE, got WordPiece");
}

TEST(TokenizerErrors, MissingVocab) {
  json doc = minimal();
  doc["model"].erase("vocab");
  expect_load_error(doc, "field 'model.vocab': missing");
}

TEST(TokenizerErrors, NonIntegerId) {
  json doc = minimal();
  doc["model"]["vocab"]["ab"] = "x";
  expect_load_error(doc, "field 'model.vocab[\"ab\"]': expected a non-negative 32-bit integer id");
}

TEST(TokenizerErrors, IdFarPastTheTokens) {
  // 96 entries: ids stay below 2 * 96 + 65536 = 65728, so the id table cannot grow to gigabytes.
  json doc = minimal();
  doc["model"]["vocab"]["ab"] = 65727;
  EXPECT_EQ(Tokenizer::from_json(doc.dump()).vocab_size(), 65728);
  doc["model"]["vocab"]["ab"] = 65728;
  expect_load_error(doc, "bad.json: field 'model.vocab[\"ab\"]': id 65728 is far past the file's "
                         "96 vocab and added entries (ids must stay below 65728");
  doc["model"]["vocab"]["ab"] = 2147483647;
  expect_load_error(doc, "field 'model.vocab[\"ab\"]': id 2147483647 is far past");
}

TEST(TokenizerErrors, DuplicateIds) {
  json doc = minimal();
  doc["model"]["vocab"]["ba"] = 94;
  expect_load_error(doc, "id 94 given to both");
}

// HF numbers added tokens itself, whatever the file says (tokenizers 0.23: a token in the vocab
// keeps its vocab id, any other takes the next id after the vocab's entries and earlier added
// ids); a file that says otherwise is refused rather than read with ids HF would not give.
TEST(TokenizerErrors, AddedTokenIdsMustBeHfs) {
  json doc = minimal();
  doc["added_tokens"][0]["id"] = 0;
  expect_load_error(doc, "field 'added_tokens[0].id': is 0, but HF tokenizers gives "
                         "\"<|endoftext|>\" id 95 (the next id after model.vocab's 95 entries");
  doc["added_tokens"][0]["id"] = 96;
  expect_load_error(doc, "gives \"<|endoftext|>\" id 95");
  // In the vocab: its vocab id.
  doc = minimal();
  doc["added_tokens"].push_back({{"id", 3}, {"content", "ab"}});
  expect_load_error(doc, "field 'added_tokens[1].id': is 3, but HF tokenizers gives \"ab\" id 94 "
                         "(its id in model.vocab)");
  doc["added_tokens"][1]["id"] = 94;
  EXPECT_EQ(Tokenizer::from_json(doc.dump()).vocab_size(), 96);
  // After a vocab token and a new one: the next after the largest added id.
  doc["added_tokens"].push_back({{"id", 96}, {"content", "<pad>"}});
  EXPECT_EQ(*Tokenizer::from_json(doc.dump()).token_to_id("<pad>"), 96);
  // The same content twice: its first id.
  doc["added_tokens"].push_back({{"id", 97}, {"content", "<pad>"}});
  expect_load_error(doc, "field 'added_tokens[3].id': is 97, but HF tokenizers gives \"<pad>\" id "
                         "96 (the id of its earlier entry)");
}

TEST(TokenizerErrors, MergeOfUnknownToken) {
  json doc = minimal();
  doc["model"]["merges"].push_back("a \xC3\xA9");
  expect_load_error(doc, "field 'model.merges[1]': token \"\xC3\xA9\" is not in model.vocab");
}

TEST(TokenizerErrors, MergeResultNotInVocab) {
  json doc = minimal();
  doc["model"]["merges"].push_back("b c");
  expect_load_error(doc, "field 'model.merges[1]': merged token \"bc\" is not in model.vocab");
}

TEST(TokenizerErrors, MalformedMerge) {
  json doc = minimal();
  doc["model"]["merges"][0] = "a b c";
  expect_load_error(doc, "field 'model.merges[0]': expected \"left right\" (one space)");
  doc["model"]["merges"][0] = json::array({"a"});
  expect_load_error(doc, "field 'model.merges[0]': expected \"left right\" or [\"left\", \"right\"]");
}

TEST(TokenizerErrors, UnsupportedNormalizer) {
  json doc = minimal();
  doc["normalizer"] = {{"type", "Lowercase"}};
  expect_load_error(doc, "field 'normalizer.type': expected NFC, a Sequence of NFC or null, got Lowercase");
  doc["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array({{{"type", "NFKC"}}})}};
  expect_load_error(doc, "field 'normalizer.normalizers[0].type': expected NFC, got NFKC");
}

TEST(TokenizerErrors, UnsupportedPreTokenizer) {
  json doc = minimal();
  doc["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_load_error(doc, "field 'pre_tokenizer.type': expected ByteLevel, got Whitespace");
  doc["pre_tokenizer"] = nullptr;
  expect_load_error(doc, "field 'pre_tokenizer': expected ByteLevel, got null");
}

TEST(TokenizerErrors, UnsupportedDecoder) {
  json doc = minimal();
  doc["decoder"] = {{"type", "WordPiece"}};
  expect_load_error(doc, "field 'decoder.type': expected ByteLevel, got WordPiece");
}

TEST(TokenizerErrors, UnsupportedModelOptions) {
  json doc = minimal();
  doc["model"]["dropout"] = 0.1;
  expect_load_error(doc, "field 'model.dropout': expected null");
  doc = minimal();
  doc["model"]["byte_fallback"] = true;
  expect_load_error(doc, "field 'model.byte_fallback': expected false");
  doc = minimal();
  doc["model"]["fuse_unk"] = "x";  // once ignored, whatever its value
  expect_load_error(doc, "field 'model.fuse_unk': expected true or false");
}

TEST(TokenizerErrors, BadAddedToken) {
  json doc = minimal();
  doc["added_tokens"][0].erase("content");
  expect_load_error(doc, "field 'added_tokens[0].content': missing");
  doc = minimal();
  doc["added_tokens"][0]["lstrip"] = true;
  expect_load_error(doc, "field 'added_tokens[0].lstrip': expected false (not supported)");
  doc = minimal();
  doc["added_tokens"][0]["content"] = "";
  expect_load_error(doc, "field 'added_tokens[0].content': expected a non-empty string");
}

TEST(TokenizerErrors, UnknownUnkToken) {
  json doc = minimal();
  doc["model"]["unk_token"] = "<unk>";
  expect_load_error(doc, "field 'model.unk_token': expected a token of model.vocab");
}

// Seeded random byte corruptions of a valid file: loading either works or throws
// moegrad::Error; it never crashes or throws anything else. Whatever loads must encode.
TEST(TokenizerErrors, RandomCorruptionsNeverCrash) {
  const std::string valid = minimal().dump();
  std::mt19937 rng(1234);
  int loaded = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0: text[at] = static_cast<char>(rng() % 256); break;
        case 1: text.erase(at, 1 + rng() % 8); break;
        default: text.insert(at, 1, "{}[]\",:0 -"[rng() % 10]); break;
      }
      if (text.empty()) text.push_back('{');
    }
    try {
      const Tokenizer tok = Tokenizer::from_json(text, "mutated.json");
      tok.encode("ab cd<|endoftext|>");
      ++loaded;
    } catch (const Error&) {
    }
  }
  EXPECT_GT(loaded, 0);
}

}  // namespace
}  // namespace moegrad::data
