// The tokenizer against HF tokenizers on the fixture strings, its pieces, and save/reload.
#include <filesystem>

#include "data/byte_level.h"
#include "data/tokenizer.h"
#include "tests/data/tokenizer_fixtures.h"
#include "tests/testing.h"

namespace moegrad::data {
namespace {

using testing::tokenizer_fixture;
using testing::tokenizer_fixture_json;

const Tokenizer& hf_tokenizer() {
  static const Tokenizer tok = Tokenizer::from_file(tokenizer_fixture("tokenizer.json").string());
  return tok;
}

TEST(Tokenizer, EncodesLikeHf) {
  for (const auto& c : tokenizer_fixture_json("cases.json")) {
    const std::string text = c["text"];
    EXPECT_EQ(hf_tokenizer().encode(text), c["ids"].get<std::vector<int32_t>>()) << "text: " << text;
  }
}

TEST(Tokenizer, EncodesLikeHfWithShuffledAndRepeatedMerges) {
  const Tokenizer tok = Tokenizer::from_file(tokenizer_fixture("tokenizer_shuffled_merges.json").string());
  for (const auto& c : tokenizer_fixture_json("cases.json")) {
    const std::string text = c["text"];
    EXPECT_EQ(tok.encode(text), c["ids_shuffled_merges"].get<std::vector<int32_t>>()) << "text: " << text;
  }
}

// A vocabulary without "'" and the bytes of "é", with an unk_token: each byte it cannot spell
// is one unk, or with fuse_unk each run of them; moegrad once ignored fuse_unk.
TEST(Tokenizer, EncodesLikeHfWithAnUnkTokenAndFuseUnk) {
  nlohmann::json doc = tokenizer_fixture_json("tokenizer_unk.json");
  const Tokenizer unk = Tokenizer::from_json(doc.dump(), "tokenizer_unk.json");
  doc["model"]["fuse_unk"] = true;
  const Tokenizer fused = Tokenizer::from_json(doc.dump(), "tokenizer_unk.json, fuse_unk");
  int64_t runs = 0;
  for (const auto& c : tokenizer_fixture_json("cases.json")) {
    const std::string text = c["text"];
    EXPECT_EQ(unk.encode(text), c["ids_unk"].get<std::vector<int32_t>>()) << "text: " << text;
    EXPECT_EQ(fused.encode(text), c["ids_unk_fused"].get<std::vector<int32_t>>()) << "text: " << text;
    runs += c["ids_unk"] != c["ids_unk_fused"];
  }
  EXPECT_GT(runs, 0);  // the fixture has runs to fuse
}

TEST(Tokenizer, DecodesLikeHf) {
  for (const auto& c : tokenizer_fixture_json("cases.json")) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(hf_tokenizer().decode(ids), c["decoded"].get<std::string>()) << "text: " << c["text"];
  }
}

TEST(Tokenizer, RoundTripsNfcText) {
  for (const auto& c : tokenizer_fixture_json("cases.json")) {
    const std::string text = c["text"];
    EXPECT_EQ(hf_tokenizer().decode(hf_tokenizer().encode(text)), nfc(text));
  }
}

TEST(Tokenizer, TokenBytesConcatenateToTheNormalisedText) {
  for (const auto& c : tokenizer_fixture_json("cases.json")) {
    const std::string text = c["text"];
    std::string joined;
    for (int32_t id : hf_tokenizer().encode(text)) joined += hf_tokenizer().token_bytes(id);
    EXPECT_EQ(joined, nfc(text));  // byte for byte, also where a token splits a character
  }
  const int32_t eos = *hf_tokenizer().token_to_id("<|endoftext|>");
  EXPECT_EQ(hf_tokenizer().token_bytes(eos), "<|endoftext|>");
  EXPECT_FALSE(hf_tokenizer().has_id(-1));
  EXPECT_FALSE(hf_tokenizer().has_id(hf_tokenizer().vocab_size()));
  testing::expect_error([&] { hf_tokenizer().token_bytes(-1); }, "not in the vocabulary");
}

TEST(Tokenizer, NfcMakesDecomposedAccentsEqual) {
  EXPECT_EQ(hf_tokenizer().encode("Cafe\xCC\x81"), hf_tokenizer().encode("Caf\xC3\xA9"));
}

TEST(Tokenizer, AddedTokensSplitOutLongestFirst) {
  const Tokenizer& tok = hf_tokenizer();
  const int32_t eot = *tok.token_to_id("<|endoftext|>");
  const std::vector<int32_t> ids = tok.encode("a<|endoftext|>b");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], eot);
  // Eight spaces are one added token, not two four-space ones.
  const auto eight = tok.encode("x        y");
  EXPECT_EQ(eight[1], *tok.token_to_id("        "));
}

TEST(Tokenizer, SkipsSpecialTokensOnRequest) {
  const Tokenizer& tok = hf_tokenizer();
  const auto ids = tok.encode("a<|endoftext|>b");
  EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/true), "ab");
}

TEST(Tokenizer, VocabLookups) {
  const Tokenizer& tok = hf_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 889);
  EXPECT_EQ(tok.token_to_id("<|padding|>"), 1);
  EXPECT_EQ(tok.id_to_token(1), "<|padding|>");
  EXPECT_EQ(tok.id_to_token(*tok.token_to_id("\xC4\xA0")), "\xC4\xA0");  // U+0120 = byte ' '
  EXPECT_FALSE(tok.token_to_id("no such token").has_value());
  testing::expect_error([&] { tok.id_to_token(100000); }, "id 100000 is not in the vocabulary");
  testing::expect_error([&] { tok.decode({-1}); }, "id -1 is not in the vocabulary");
}

TEST(Tokenizer, RejectsInvalidUtf8Input) {
  testing::expect_error([] { hf_tokenizer().encode("ok \xC3("); }, "not valid UTF-8 (byte 3)");
}

TEST(Tokenizer, SavedFileReloadsAndEncodesTheSame) {
  const auto path = std::filesystem::temp_directory_path() / "moegrad_test_tokenizer_saved.json";
  hf_tokenizer().save(path.string());
  const Tokenizer again = Tokenizer::from_file(path.string());
  std::filesystem::remove(path);
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
  EXPECT_EQ(again.vocab_size(), hf_tokenizer().vocab_size());
  for (const auto& c : tokenizer_fixture_json("cases.json")) {
    const std::string text = c["text"];
    EXPECT_EQ(again.encode(text), hf_tokenizer().encode(text)) << "text: " << text;
  }
}

TEST(Tokenizer, CopiesEncodeTheSame) {
  Tokenizer copy = hf_tokenizer();
  EXPECT_EQ(copy.encode("Hello world"), hf_tokenizer().encode("Hello world"));
  copy = Tokenizer::from_json(hf_tokenizer().to_json());
  EXPECT_EQ(copy.encode("Съешь"), hf_tokenizer().encode("Съешь"));
}

TEST(ByteLevel, BytesToUnicodeTable) {
  EXPECT_EQ(byte_to_char(' '), U'\u0120');
  EXPECT_EQ(byte_to_char('\n'), U'\u010A');
  EXPECT_EQ(byte_to_char('A'), U'A');
  EXPECT_EQ(byte_to_char(0xAD), U'\u0143');  // the last unprintable byte: 256 + 67
  for (int b = 0; b < 256; ++b) EXPECT_EQ(char_to_byte(byte_to_char(static_cast<uint8_t>(b))), b);
  EXPECT_EQ(char_to_byte(U' '), -1);
}

TEST(ByteLevel, Gpt2Split) {
  const auto pieces = gpt2_split("I'm  here,\thello 123!!\n\n  x");
  const std::vector<std::string_view> expected = {"I", "'m", " ", " here", ",", "\t", "hello",
                                                  " 123", "!!", "\n\n ", " x"};
  EXPECT_EQ(pieces, expected);
}

TEST(ByteLevel, LossyUtf8LikeRust) {
  // Maximal subparts: a truncated 3-byte sequence is one U+FFFD, a lone continuation byte one.
  EXPECT_EQ(utf8_lossy("a\xE2\x82z"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(utf8_lossy("\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(hf_tokenizer().decode({*hf_tokenizer().token_to_id("\xC3\xB0")}), "\xEF\xBF\xBD");
}

}  // namespace
}  // namespace moegrad::data
