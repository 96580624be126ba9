// Token shards: round trips, the documented byte layout, and a clear error naming the file for
// every kind of damage.
#include <cstring>
#include <fstream>
#include <iterator>

#include "data/token_shard.h"
#include "tests/data/shard_fixtures.h"
#include "tests/testing.h"

namespace moegrad::data {
namespace {

namespace fs = std::filesystem;
using moegrad::testing::error_of;
using moegrad::testing::expect_error;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), std::streamsize(bytes.size()));
}

template <typename T>
T get(const std::string& bytes, size_t at) {
  T v;
  std::memcpy(&v, bytes.data() + at, sizeof(T));
  return v;
}

template <typename T>
void put(std::string& bytes, size_t at, T v) {
  std::memcpy(bytes.data() + at, &v, sizeof(T));
}

// FNV-1a 64, written again from its definition to check the file format independently.
uint64_t fnv(const std::string& bytes, size_t begin, size_t end) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = begin; i < end; ++i) h = (h ^ uint8_t(bytes[i])) * 0x100000001b3ull;
  return h;
}

// Recomputes the three checksums after a deliberate edit, so that structural checks are
// reached instead of a checksum mismatch.
void reseal(std::string& bytes) {
  size_t width = get<uint32_t>(bytes, 12) == 1 ? 2 : 4;
  size_t tokens_end = 104 + size_t(get<int64_t>(bytes, 24)) * width;
  put(bytes, 48, fnv(bytes, 104, tokens_end));
  put(bytes, 56, fnv(bytes, tokens_end, bytes.size()));
  put(bytes, 96, fnv(bytes, 0, 96));
}

std::vector<int32_t> tokens_of(const TokenShard& shard, int64_t doc) {
  auto [begin, end] = shard.document_range(doc);
  std::vector<int32_t> out(size_t(end - begin));
  shard.copy_tokens(begin, end - begin, out.data());
  return out;
}

const Documents kDocs = {{"ls.1", {5, 0, 999, 7}},
                         {"", {}},
                         {"größe — 日本語.7", {1, 2, 3}},
                         {"empty.1", {}},
                         {"cat.1", {998}}};

class TokenShardTest : public ShardTest {};

TEST_F(TokenShardTest, RoundTripU16) {
  std::string p = write_shard("en.shard", "en", 1000, kDocs);
  TokenShard shard = TokenShard::open(p);
  EXPECT_EQ(shard.path(), p);
  EXPECT_EQ(shard.language(), "en");
  EXPECT_EQ(shard.vocab_size(), 1000);
  EXPECT_EQ(shard.header().dtype, TokenDType::U16);
  EXPECT_EQ(shard.header().version, 1u);
  EXPECT_EQ(shard.num_tokens(), 8);
  ASSERT_EQ(shard.num_documents(), int64_t(kDocs.size()));
  for (size_t d = 0; d < kDocs.size(); ++d) {
    EXPECT_EQ(shard.document_name(int64_t(d)), kDocs[d].first);
    EXPECT_EQ(tokens_of(shard, int64_t(d)), kDocs[d].second);
  }
  EXPECT_EQ(shard.document_range(1), std::make_pair(int64_t(4), int64_t(4)));
  std::vector<int32_t> all(8);
  shard.copy_tokens(0, 8, all.data());
  EXPECT_EQ(all, (std::vector<int32_t>{5, 0, 999, 7, 1, 2, 3, 998}));
  // Only the final file remains: no temporary left beside it.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(TokenShardTest, RoundTripU32) {
  std::string p = write_shard("x.shard", "zh-Hant_2", 100000,
                              {{"a", {70000, 99999, 0}}, {"b", {}}, {"c", {65536}}});
  TokenShard shard = TokenShard::open(p);
  EXPECT_EQ(shard.header().dtype, TokenDType::U32);
  EXPECT_EQ(shard.language(), "zh-Hant_2");
  EXPECT_EQ(tokens_of(shard, 0), (std::vector<int32_t>{70000, 99999, 0}));
  EXPECT_EQ(tokens_of(shard, 1), std::vector<int32_t>{});
  EXPECT_EQ(tokens_of(shard, 2), std::vector<int32_t>{65536});
}

TEST_F(TokenShardTest, VocabOf65536IsStillU16) {
  std::string p = write_shard("x.shard", "en", 65536, {{"a", {65535}}});
  EXPECT_EQ(TokenShard::open(p).header().dtype, TokenDType::U16);
  EXPECT_EQ(tokens_of(TokenShard::open(p), 0), std::vector<int32_t>{65535});
}

TEST_F(TokenShardTest, DocumentsLargerThanTheWriteBuffer) {
  std::vector<int32_t> big(700000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = int32_t((i * 7919) % 50000);
  std::string p = write_shard("big.shard", "en", 50000, {{"big", big}, {"small", {1}}});
  TokenShard shard = TokenShard::open(p);
  EXPECT_EQ(tokens_of(shard, 0), big);
  EXPECT_EQ(tokens_of(shard, 1), std::vector<int32_t>{1});
}

// The bytes on disk follow the layout documented in token_shard.h.
TEST_F(TokenShardTest, ByteLayout) {
  std::string bytes = read_bytes(write_shard("en.shard", "en", 1000, kDocs));
  EXPECT_EQ(bytes.substr(0, 8), std::string("MGSHARD\0", 8));
  EXPECT_EQ(get<uint32_t>(bytes, 8), 1u);
  EXPECT_EQ(get<uint32_t>(bytes, 12), 1u);
  EXPECT_EQ(get<int64_t>(bytes, 16), 1000);
  EXPECT_EQ(get<int64_t>(bytes, 24), 8);
  EXPECT_EQ(get<int64_t>(bytes, 32), 5);
  size_t tokens_end = 104 + 8 * 2;
  EXPECT_EQ(get<uint64_t>(bytes, 40), bytes.size() - tokens_end);
  EXPECT_EQ(get<uint64_t>(bytes, 48), fnv(bytes, 104, tokens_end));
  EXPECT_EQ(get<uint64_t>(bytes, 56), fnv(bytes, tokens_end, bytes.size()));
  EXPECT_EQ(bytes.substr(64, 32), std::string("en") + std::string(30, '\0'));
  EXPECT_EQ(get<uint64_t>(bytes, 96), fnv(bytes, 0, 96));
  EXPECT_EQ(get<uint16_t>(bytes, 104 + 2 * 2), 999);
  EXPECT_EQ(get<int64_t>(bytes, tokens_end + 8 * 5), 8);  // the last offset
  size_t names = tokens_end + 8 * 6;
  EXPECT_EQ(get<uint32_t>(bytes, names), 4u);
  EXPECT_EQ(bytes.substr(names + 4, 4), "ls.1");

  TokenShard shard = TokenShard::open(path("en.shard"));
  EXPECT_EQ(shard.header().token_checksum, get<uint64_t>(bytes, 48));
  EXPECT_EQ(shard.header().index_checksum, get<uint64_t>(bytes, 56));
}

TEST_F(TokenShardTest, AnEmptyShardIsValid) {
  std::string p = write_shard("e.shard", "en", 10, {});
  TokenShard shard = TokenShard::open(p);
  EXPECT_EQ(shard.num_tokens(), 0);
  EXPECT_EQ(shard.num_documents(), 0);
}

TEST_F(TokenShardTest, IdOutOfRangeNamesTheDocumentAndTheId) {
  TokenShardWriter writer(path("en.shard"), "en", 1000);
  writer.add_document({1, 2}, "good.1");
  expect_error([&] { writer.add_document({1, 1000, 2}, "bad.1"); },
               "document 'bad.1' has token id 1000, outside the vocabulary [0, 1000)");
  expect_error([&] { writer.add_document({-3}, "neg.1"); }, "document 'neg.1' has token id -3");
  // A refused document leaves no trace.
  writer.add_document({3}, "after.1");
  EXPECT_EQ(writer.num_tokens(), 3);
  EXPECT_EQ(writer.num_documents(), 2);
  writer.finish();
  TokenShard shard = TokenShard::open(path("en.shard"));
  EXPECT_EQ(shard.document_name(1), "after.1");
  EXPECT_EQ(tokens_of(shard, 1), std::vector<int32_t>{3});
}

TEST_F(TokenShardTest, WriterArgumentErrors) {
  std::string p = path("x.shard");
  expect_error([&] { TokenShardWriter(p, "", 10); }, "language code '' is empty");
  expect_error([&] { TokenShardWriter(p, std::string(32, 'a'), 10); }, "is 32 bytes long (at most 31)");
  expect_error([&] { TokenShardWriter(p, "en/us", 10); }, "may hold only letters");
  expect_error([&] { TokenShardWriter(p, "en", 0); }, "vocab size 0 is outside");
  EXPECT_TRUE(fs::is_empty(dir_));
  TokenShardWriter ok(p, std::string(31, 'a'), 10);
  ok.finish();
  expect_error([&] { ok.add_document({1}, "late"); }, "add_document after finish()");
  expect_error([&] { ok.finish(); }, "finish() called twice");
  EXPECT_EQ(TokenShard::open(p).language(), std::string(31, 'a'));
}

TEST_F(TokenShardTest, WriterWithoutFinishLeavesNoFile) {
  {
    TokenShardWriter writer(path("en.shard"), "en", 1000);
    writer.add_document({1, 2, 3}, "a");
    EXPECT_FALSE(fs::is_empty(dir_));  // the temporary file exists while writing
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(TokenShardTest, RewritingReplacesTheShard) {
  std::string p = write_shard("en.shard", "en", 1000, {{"a", {1}}});
  write_shard("en.shard", "en", 1000, {{"b", {2, 3}}});
  TokenShard shard = TokenShard::open(p);
  EXPECT_EQ(shard.document_name(0), "b");
  EXPECT_EQ(shard.num_tokens(), 2);
}

TEST_F(TokenShardTest, ReadHeaderDoesNotReadTheTokens) {
  std::string p = write_shard("de.shard", "de", 1000, kDocs);
  std::string bytes = read_bytes(p);
  bytes[104] ^= 0x40;
  bytes.resize(bytes.size() - 3);
  write_bytes(p, bytes);
  ShardHeader h = TokenShard::read_header(p);
  EXPECT_EQ(h.language, "de");
  EXPECT_EQ(h.vocab_size, 1000);
  EXPECT_EQ(h.num_tokens, 8);
  EXPECT_EQ(h.num_documents, 5);
  EXPECT_EQ(h.dtype, TokenDType::U16);
  expect_error([&] { TokenShard::open(p); }, "truncated");
  // The header itself is still checked.
  bytes[70] ^= 1;
  write_bytes(p, bytes);
  expect_error([&] { TokenShard::read_header(p); }, p + ": header checksum mismatch");
  expect_error([&] { TokenShard::read_header(path("missing.shard")); },
               "cannot open " + path("missing.shard"));
}

TEST_F(TokenShardTest, MissingFile) {
  expect_error([&] { TokenShard::open(path("missing.shard")); },
               "cannot open " + path("missing.shard"));
}

// Every kind of damage gives an error that names the file and says what is wrong.
class CorruptShard : public ShardTest {
 protected:
  void SetUp() override {
    ShardTest::SetUp();
    file_ = write_shard("de.shard", "de", 1000, kDocs);
    bytes_ = read_bytes(file_);
  }
  void expect_open_error(const std::string& bytes, const std::string& what) {
    write_bytes(file_, bytes);
    expect_error([&] { TokenShard::open(file_); }, file_ + ": " + what);
  }
  std::string file_;
  std::string bytes_;
};

TEST_F(CorruptShard, FlippedTokenByte) {
  std::string b = bytes_;
  b[104 + 5] ^= 0x01;
  expect_open_error(b, "token checksum mismatch (file is corrupt)");
}

TEST_F(CorruptShard, FlippedIndexByte) {
  std::string b = bytes_;
  b[104 + 16 + 8] ^= 0x01;  // the second offset
  expect_open_error(b, "index checksum mismatch (file is corrupt)");
  b = bytes_;
  b.back() ^= 0x20;  // a name
  expect_open_error(b, "index checksum mismatch (file is corrupt)");
}

TEST_F(CorruptShard, FlippedHeaderByte) {
  for (size_t at : {12, 16, 24, 32, 40, 48, 56, 64, 90, 96}) {
    std::string b = bytes_;
    b[at] ^= 0x01;
    expect_open_error(b, "header checksum mismatch (file is corrupt)");
  }
}

TEST_F(CorruptShard, TruncatedByOneByte) {
  std::string b = bytes_.substr(0, bytes_.size() - 1);
  expect_open_error(b, "truncated: header says 8 tokens (16 bytes) and a " +
                           std::to_string(bytes_.size() - 120) + "-byte index, " +
                           std::to_string(bytes_.size()) + " bytes in all, but the file holds " +
                           std::to_string(b.size()) + " bytes");
}

TEST_F(CorruptShard, TruncatedInsideTheHeader) {
  expect_open_error(bytes_.substr(0, 50),
                    "truncated: the file holds 50 bytes, less than the 104-byte header");
  expect_open_error(bytes_.substr(0, 3), "truncated: the file holds 3 bytes");
}

TEST_F(CorruptShard, AppendedByte) {
  expect_open_error(bytes_ + "x", "trailing data after the index: header says 8 tokens");
}

TEST_F(CorruptShard, WrongMagic) {
  std::string b = bytes_;
  b[2] = 'X';
  expect_open_error(b, "not a moegrad token shard (bad magic)");
  expect_open_error("", "not a moegrad token shard (bad magic)");
  expect_open_error("{\"text\": \"hello\"}\n", "not a moegrad token shard (bad magic)");
}

TEST_F(CorruptShard, NewerVersion) {
  std::string b = bytes_;
  put<uint32_t>(b, 8, 7);
  expect_open_error(b, "version 7 is not supported (this build reads 1)");
}

// Damage that keeps the checksums consistent (a buggy writer, a hostile file) is still caught.
TEST_F(CorruptShard, ResealedStructuralDamage) {
  std::string b = bytes_;
  put<uint16_t>(b, 104 + 2 * 6, 1000);
  reseal(b);
  expect_open_error(b, "token 6 is id 1000, outside the vocabulary [0, 1000)");

  size_t offsets = 104 + 16;
  b = bytes_;
  put<int64_t>(b, offsets, 1);
  reseal(b);
  expect_open_error(b, "document index starts at token 1, not 0");

  b = bytes_;
  put<int64_t>(b, offsets + 8 * 2, 2);  // document 1 would end before it starts
  reseal(b);
  expect_open_error(b, "document 1 ends at token 2 before it starts at 4");

  b = bytes_;
  put<int64_t>(b, offsets + 8 * 5, 7);
  reseal(b);
  expect_open_error(b, "document index ends at token 7, not at the 8 tokens of the header");

  b = bytes_;
  put<uint32_t>(b, offsets + 8 * 6, 1000);  // the first name's length
  reseal(b);
  expect_open_error(b, "the 1000-byte name of document 0 lies past the index end");

  b = bytes_;
  b[66] = '/';
  reseal(b);
  expect_open_error(b, "language code 'de/' may hold only letters");

  b = bytes_;
  put<uint32_t>(b, 12, 2);
  reseal(b);
  expect_open_error(b, "token dtype 2 does not match vocab size 1000 (expected u16)");
}

TEST_F(TokenShardTest, AccessorsAreBoundsChecked) {
  TokenShard shard = TokenShard::open(write_shard("en.shard", "en", 1000, kDocs));
  std::vector<int32_t> out(16);
  expect_error([&] { shard.copy_tokens(5, 4, out.data()); },
               ": copy_tokens of [5, 9) is outside its 8 tokens");
  expect_error([&] { shard.copy_tokens(-1, 1, out.data()); }, "is outside its 8 tokens");
  expect_error([&] { shard.copy_tokens(0, -1, out.data()); }, "is outside its 8 tokens");
  shard.copy_tokens(8, 0, out.data());
  expect_error([&] { shard.document_range(5); }, "document 5 out of range (5 documents)");
  expect_error([&] { shard.document_name(-1); }, "document -1 out of range");
}

}  // namespace
}  // namespace moegrad::data
