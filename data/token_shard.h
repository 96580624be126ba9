// Token shards: the tokenized documents of one language in one binary file, read by memory map.
// A name keeps what a document was called at its source (a man page's name, a JSONL "id"), so
// analyses can align the same document across languages.
//
// Layout, version 1, little-endian, offsets in bytes:
//     0  char[8]   magic "MGSHARD\0"
//     8  u32       version (1)
//    12  u32       token dtype (1 = u16, 2 = u32; u16 exactly when vocab_size <= 65536)
//    16  i64       vocab_size
//    24  i64       num_tokens
//    32  i64       num_documents
//    40  u64       index_bytes (the size of the document index below)
//    48  u64       token checksum: FNV-1a 64 over the token bytes
//    56  u64       index checksum: FNV-1a 64 over the index bytes
//    64  char[32]  language, zero-padded (1 to 31 bytes of [A-Za-z0-9_-])
//    96  u64       header checksum: FNV-1a 64 over bytes [0, 96)
//   104  tokens    num_tokens ids, u16 or u32
//        index     (num_documents + 1) i64 token offsets (0, ..., num_tokens), then per
//                  document a u32 byte length and that many bytes of name (UTF-8)
// The file is exactly 104 + num_tokens * token width + index_bytes bytes long, so truncation and
// trailing garbage are caught from the header alone; the header checksum catches a damaged field
// that would otherwise still read as plausible (a language code, a vocabulary size).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace moegrad::data {

enum class TokenDType : uint32_t { U16 = 1, U32 = 2 };

struct ShardHeader {
  uint32_t version = 1;
  int64_t vocab_size = 0;
  TokenDType dtype = TokenDType::U16;  // u16 whenever vocab_size <= 65536
  std::string language;
  int64_t num_tokens = 0;
  int64_t num_documents = 0;
  uint64_t token_checksum = 0;  // FNV-1a 64 of the token bytes: identifies the data cheaply
  uint64_t index_checksum = 0;
};

// Streams documents into `<path>` through a temporary file renamed into place by finish(), so a
// failed or interrupted build never leaves a shard that looks complete. Tokens go to disk as
// they come: memory holds the index only.
class TokenShardWriter {
 public:
  TokenShardWriter(std::string path, std::string language, int64_t vocab_size);
  ~TokenShardWriter();  // without finish(): the temporary file is removed
  TokenShardWriter(const TokenShardWriter&) = delete;
  TokenShardWriter& operator=(const TokenShardWriter&) = delete;

  // Every id must lie in [0, vocab_size); throws naming the document and the id otherwise.
  void add_document(const std::vector<int32_t>& ids, const std::string& name);
  void finish();

  int64_t num_tokens() const;
  int64_t num_documents() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A shard opened read-only. open() validates everything (magic, version, sizes against the file
// length, offsets monotone, both checksums) and throws naming the file and what is wrong, so a
// truncated, corrupt or foreign file is never read as tokens.
class TokenShard {
 public:
  static TokenShard open(const std::string& path);
  // Header fields only, without reading the tokens (cheap: for listings and mismatch checks).
  static ShardHeader read_header(const std::string& path);

  const std::string& path() const;
  const ShardHeader& header() const;
  const std::string& language() const { return header().language; }
  int64_t vocab_size() const { return header().vocab_size; }
  int64_t num_tokens() const { return header().num_tokens; }
  int64_t num_documents() const { return header().num_documents; }

  // Document i covers tokens [begin, end).
  std::pair<int64_t, int64_t> document_range(int64_t i) const;
  const std::string& document_name(int64_t i) const;
  // Copies tokens [begin, begin + count) as int32.
  void copy_tokens(int64_t begin, int64_t count, int32_t* out) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// The languages of the <LANG>.shard files in `dir` (as `moegrad data build` writes them),
// sorted; throws naming the folder when it is not one.
std::vector<std::string> shard_languages(const std::string& dir);

}  // namespace moegrad::data
