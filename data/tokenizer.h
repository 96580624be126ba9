// Byte-level BPE tokenizer compatible with HuggingFace tokenizer.json files of the GPT-2 /
// GPT-NeoX / OLMoE kind: NFC normalizer, added tokens split out first, ByteLevel pre-tokenizer
// (GPT-2 regex), BPE model, ByteLevel decoder. encode() never adds special tokens (the
// post_processor is ignored).
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace moegrad::data {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  // true: matched in the normalised text; false: matched in the raw text before normalisation.
  bool normalized = false;
};

// Everything a Tokenizer is made of; what the loader and the trainer produce.
struct TokenizerConfig {
  bool nfc = true;
  bool add_prefix_space = false;
  bool use_regex = true;
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // rank = index
  std::vector<AddedToken> added_tokens;
  std::optional<std::string> unk_token;
  bool fuse_unk = false;  // a run of bytes the vocab lacks is one unk_token, not one each
  bool ignore_merges = false;
};

class Tokenizer {
 public:
  // `source` names the file in error messages.
  static Tokenizer from_json(const std::string& json, const std::string& source = "<json>");
  static Tokenizer from_file(const std::string& path);
  explicit Tokenizer(TokenizerConfig config, const std::string& source = "<config>");
  // Copies rebuild the lookup tables from the config (the cache is not shared).
  Tokenizer(const Tokenizer& other) : Tokenizer(other.config_) {}
  Tokenizer& operator=(const Tokenizer& other);

  // text must be valid UTF-8.
  std::vector<int32_t> encode(std::string_view text) const;
  // Byte-level decode; ill-formed UTF-8 in the result becomes U+FFFD as in HF.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;
  // The raw bytes one id stands for, before decode()'s UTF-8 repair (so a token holding half a
  // character gives its one byte): the denominator of bits per byte.
  std::string token_bytes(int32_t id) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;
  // Whether id names a token (ids below vocab_size() may be unused).
  bool has_id(int32_t id) const {
    return id >= 0 && id < vocab_size() && !id_to_token_[size_t(id)].empty();
  }
  // Largest id + 1 (added tokens included).
  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token_.size()); }
  const TokenizerConfig& config() const { return config_; }

  // HF tokenizer.json text, and an atomic write of it (tmp file + rename).
  std::string to_json() const;
  void save(const std::string& path) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t id;
  };
  void merge_all(std::vector<int32_t>& syms) const;
  void append_bpe(std::string_view piece, std::vector<int32_t>& out) const;
  void append_text(std::string_view text, std::vector<int32_t>& out) const;

  TokenizerConfig config_;
  std::vector<std::string> id_to_token_;  // empty string: id not used
  std::vector<bool> is_special_;
  std::unordered_map<uint64_t, Merge> merge_of_;  // (left id << 32 | right id)
  int32_t byte_id_[256];                          // -1: byte char not in the vocab
  std::optional<int32_t> unk_id_;
  std::vector<size_t> raw_added_, normalized_added_;  // into config_.added_tokens, longest first

  static constexpr size_t kCacheLimit = 1 << 16;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace moegrad::data
