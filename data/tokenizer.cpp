#include "data/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <queue>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "data/byte_level.h"

namespace moegrad::data {
namespace {

using json = nlohmann::json;

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// Reads one tokenizer.json; every failure names the file, the field and what was expected.
class Loader {
 public:
  explicit Loader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error("Tokenizer: " + source_ + ": field '" + field + "': " + what);
  }

  const json& member(const json& obj, const std::string& key, const std::string& field) const {
    auto it = obj.find(key);
    if (it == obj.end()) fail(field, "missing");
    return *it;
  }

  std::string type_of(const json& obj, const std::string& field) const {
    if (!obj.is_object()) fail(field, "expected an object, got " + std::string(obj.type_name()));
    const json& t = member(obj, "type", field + ".type");
    if (!t.is_string()) fail(field + ".type", "expected a string");
    return t.get<std::string>();
  }

  bool flag(const json& obj, const std::string& key, bool fallback, const std::string& field) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(field + "." + key, "expected true or false");
    return it->get<bool>();
  }

  std::string string_at(const json& v, const std::string& field) const {
    if (!v.is_string()) fail(field, "expected a string, got " + std::string(v.type_name()));
    return v.get<std::string>();
  }

  int32_t id_at(const json& v, const std::string& field) const {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      fail(field, "expected a non-negative 32-bit integer id, got " + v.dump());
    return static_cast<int32_t>(v.get<int64_t>());
  }

  // null, NFC, or a Sequence whose members are all NFC.
  bool normalizer(const json& n) const {
    if (n.is_null()) return false;
    const std::string type = type_of(n, "normalizer");
    if (type == "NFC") return true;
    if (type != "Sequence") fail("normalizer.type", "expected NFC, a Sequence of NFC or null, got " + type);
    const json& list = member(n, "normalizers", "normalizer.normalizers");
    if (!list.is_array()) fail("normalizer.normalizers", "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string field = "normalizer.normalizers[" + std::to_string(i) + "]";
      const std::string t = type_of(list[i], field);
      if (t != "NFC") fail(field + ".type", "expected NFC, got " + t);
    }
    return !list.empty();
  }

  // ByteLevel, or a Sequence holding exactly one ByteLevel.
  void pre_tokenizer(const json& p, TokenizerConfig& cfg) const {
    std::string field = "pre_tokenizer";
    if (p.is_null()) fail(field, "expected ByteLevel, got null");
    const json* bl = &p;
    if (type_of(p, field) == "Sequence") {
      const json& list = member(p, "pretokenizers", field + ".pretokenizers");
      if (!list.is_array() || list.size() != 1)
        fail(field + ".pretokenizers", "expected an array holding one ByteLevel");
      bl = &list[0];
      field += ".pretokenizers[0]";
    }
    const std::string type = type_of(*bl, field);
    if (type != "ByteLevel") fail(field + ".type", "expected ByteLevel, got " + type);
    cfg.add_prefix_space = flag(*bl, "add_prefix_space", true, field);
    cfg.use_regex = flag(*bl, "use_regex", true, field);
  }

  void model(const json& m, TokenizerConfig& cfg) const {
    if (!m.is_object()) fail("model", "expected an object");
    // HF writes "type", but reads a BPE model without one too.
    if (m.contains("type") && type_of(m, "model") != "BPE")
      fail("model.type", "expected BPE, got " + type_of(m, "model"));
    if (m.contains("dropout") && !m["dropout"].is_null())
      fail("model.dropout", "expected null (BPE dropout is not supported)");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      auto it = m.find(key);
      if (it != m.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
        fail(std::string("model.") + key, "expected null (not used by byte-level BPE)");
    }
    if (flag(m, "byte_fallback", false, "model")) fail("model.byte_fallback", "expected false");
    cfg.ignore_merges = flag(m, "ignore_merges", false, "model");
    cfg.fuse_unk = flag(m, "fuse_unk", false, "model");
    if (auto it = m.find("unk_token"); it != m.end() && !it->is_null())
      cfg.unk_token = string_at(*it, "model.unk_token");

    const json& vocab = member(m, "vocab", "model.vocab");
    if (!vocab.is_object()) fail("model.vocab", "expected an object {token: id}");
    for (auto it = vocab.begin(); it != vocab.end(); ++it)
      cfg.vocab.emplace(it.key(), id_at(it.value(), "model.vocab[\"" + it.key() + "\"]"));

    const json& merges = member(m, "merges", "model.merges");
    if (!merges.is_array()) fail("model.merges", "expected an array");
    cfg.merges.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const std::string field = "model.merges[" + std::to_string(i) + "]";
      const json& e = merges[i];
      if (e.is_string()) {
        const std::string s = e.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          fail(field, "expected \"left right\" (one space), got \"" + s + "\"");
        cfg.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (e.is_array() && e.size() == 2) {
        cfg.merges.emplace_back(string_at(e[0], field + "[0]"), string_at(e[1], field + "[1]"));
      } else {
        fail(field, "expected \"left right\" or [\"left\", \"right\"], got " + e.dump());
      }
    }
  }

  void added_tokens(const json& list, TokenizerConfig& cfg) const {
    if (list.is_null()) return;
    if (!list.is_array()) fail("added_tokens", "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string field = "added_tokens[" + std::to_string(i) + "]";
      const json& t = list[i];
      if (!t.is_object()) fail(field, "expected an object");
      AddedToken a;
      a.id = id_at(member(t, "id", field + ".id"), field + ".id");
      a.content = string_at(member(t, "content", field + ".content"), field + ".content");
      a.special = flag(t, "special", false, field);
      a.normalized = flag(t, "normalized", !a.special, field);
      for (const char* key : {"single_word", "lstrip", "rstrip"})
        if (flag(t, key, false, field)) fail(field + "." + key, "expected false (not supported)");
      cfg.added_tokens.push_back(std::move(a));
    }
  }

  void decoder(const json& d) const {
    const std::string type = type_of(d, "decoder");
    if (type != "ByteLevel") fail("decoder.type", "expected ByteLevel, got " + type);
  }

  TokenizerConfig read(const std::string& text) const {
    json doc;
    try {
      doc = json::parse(text);
    } catch (const json::exception& e) {
      fail("(document)", std::string("expected valid JSON: ") + e.what());
    }
    if (!doc.is_object()) fail("(document)", "expected a JSON object");
    TokenizerConfig cfg;
    auto it = doc.find("normalizer");
    cfg.nfc = it != doc.end() && normalizer(*it);
    pre_tokenizer(member(doc, "pre_tokenizer", "pre_tokenizer"), cfg);
    model(member(doc, "model", "model"), cfg);
    if (auto a = doc.find("added_tokens"); a != doc.end()) added_tokens(*a, cfg);
    decoder(member(doc, "decoder", "decoder"));
    return cfg;
  }

 private:
  std::string source_;
};

}  // namespace

Tokenizer Tokenizer::from_json(const std::string& text, const std::string& source) {
  return Tokenizer(Loader(source).read(text), source);
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MOEGRAD_CHECK(in, "Tokenizer: cannot open '", path, "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return from_json(ss.str(), path);
}

Tokenizer::Tokenizer(TokenizerConfig config, const std::string& source) : config_(std::move(config)) {
  const Loader l(source);
  // Ids index a dense table (vocab_size() is the largest id + 1): a stray id of 2^31 - 1 would
  // ask it for tens of gigabytes. Real vocabularies number their tokens with few gaps.
  const size_t tokens = config_.vocab.size() + config_.added_tokens.size();
  const int64_t id_limit = 2 * int64_t(tokens) + 65536;
  auto place = [&](int32_t id, const std::string& token, bool special, const std::string& field) {
    if (id >= id_limit)
      l.fail(field, "id " + std::to_string(id) + " is far past the file's " +
                        std::to_string(tokens) + " vocab and added entries (ids must stay below " +
                        std::to_string(id_limit) + ": twice the entries + 65536)");
    if (static_cast<size_t>(id) >= id_to_token_.size()) {
      id_to_token_.resize(id + 1);
      is_special_.resize(id + 1);
    }
    if (!id_to_token_[id].empty() && id_to_token_[id] != token)
      l.fail(field, "id " + std::to_string(id) + " given to both \"" + id_to_token_[id] +
                        "\" and \"" + token + "\"");
    id_to_token_[id] = token;
    is_special_[id] = is_special_[id] || special;
  };
  for (const auto& [token, id] : config_.vocab) {
    if (token.empty()) l.fail("model.vocab", "expected non-empty tokens");
    place(id, token, false, "model.vocab[\"" + token + "\"]");
  }
  // HF ignores the ids written in added_tokens: a token keeps its first id or its model.vocab
  // id, and any other takes the next id after the vocab's entries and the added ids so far. A
  // file whose ids say otherwise would encode differently here and in HF, so it is refused.
  std::unordered_map<std::string, int32_t> added_ids;
  int64_t max_added = -1;
  const int64_t vocab_entries = int64_t(config_.vocab.size());
  for (size_t i = 0; i < config_.added_tokens.size(); ++i) {
    const AddedToken& a = config_.added_tokens[i];
    const std::string field = "added_tokens[" + std::to_string(i) + "]";
    if (a.content.empty()) l.fail(field + ".content", "expected a non-empty string");
    if (utf8_invalid_at(a.content) != std::string::npos) l.fail(field + ".content", "expected UTF-8");
    const auto earlier = added_ids.find(a.content);
    const auto in_vocab = config_.vocab.find(a.content);
    std::string why;
    int64_t hf_id = 0;
    if (earlier != added_ids.end()) {
      hf_id = earlier->second;
      why = "the id of its earlier entry";
    } else if (in_vocab != config_.vocab.end()) {
      hf_id = in_vocab->second;
      why = "its id in model.vocab";
    } else {
      hf_id = max_added < 0 ? vocab_entries : std::max(vocab_entries, max_added + 1);
      why = "the next id after model.vocab's " + std::to_string(vocab_entries) +
            " entries and the added tokens before it";
    }
    if (a.id != hf_id)
      l.fail(field + ".id", "is " + std::to_string(a.id) + ", but HF tokenizers gives \"" +
                                a.content + "\" id " + std::to_string(hf_id) + " (" + why +
                                "); a file saved by HF has its ids");
    added_ids.emplace(a.content, a.id);
    max_added = std::max<int64_t>(max_added, a.id);
    place(a.id, a.content, a.special, field);
    (a.normalized ? normalized_added_ : raw_added_).push_back(i);
  }
  auto longest_first = [&](size_t x, size_t y) {
    return config_.added_tokens[x].content.size() > config_.added_tokens[y].content.size();
  };
  std::stable_sort(raw_added_.begin(), raw_added_.end(), longest_first);
  std::stable_sort(normalized_added_.begin(), normalized_added_.end(), longest_first);

  for (int b = 0; b < 256; ++b) {
    std::string s;
    utf8_append(s, byte_to_char(static_cast<uint8_t>(b)));
    auto it = config_.vocab.find(s);
    byte_id_[b] = it == config_.vocab.end() ? -1 : it->second;
  }
  if (config_.unk_token) {
    auto it = config_.vocab.find(*config_.unk_token);
    if (it == config_.vocab.end()) l.fail("model.unk_token", "expected a token of model.vocab");
    unk_id_ = it->second;
  }
  merge_of_.reserve(config_.merges.size());
  for (size_t i = 0; i < config_.merges.size(); ++i) {
    const auto& [a, b] = config_.merges[i];
    const std::string field = "model.merges[" + std::to_string(i) + "]";
    auto ia = config_.vocab.find(a), ib = config_.vocab.find(b), ic = config_.vocab.find(a + b);
    if (ia == config_.vocab.end()) l.fail(field, "token \"" + a + "\" is not in model.vocab");
    if (ib == config_.vocab.end()) l.fail(field, "token \"" + b + "\" is not in model.vocab");
    if (ic == config_.vocab.end()) l.fail(field, "merged token \"" + a + b + "\" is not in model.vocab");
    // A repeated merge takes its last rank: HF collects the merges into a map the same way.
    merge_of_.insert_or_assign(pair_key(ia->second, ib->second), Merge{static_cast<int32_t>(i), ic->second});
  }
}

Tokenizer& Tokenizer::operator=(const Tokenizer& other) {
  if (this != &other) {
    Tokenizer copy(other.config_);
    config_ = std::move(copy.config_);
    id_to_token_ = std::move(copy.id_to_token_);
    is_special_ = std::move(copy.is_special_);
    merge_of_ = std::move(copy.merge_of_);
    std::copy(std::begin(copy.byte_id_), std::end(copy.byte_id_), std::begin(byte_id_));
    unk_id_ = copy.unk_id_;
    raw_added_ = std::move(copy.raw_added_);
    normalized_added_ = std::move(copy.normalized_added_);
    std::lock_guard<std::mutex> lock(cache_mutex_);
    cache_.clear();
  }
  return *this;
}

// HF's Word::merge_all: a min-queue of (rank, position) over a linked list of symbols; an
// entry is stale when its pair no longer yields the same token. O(n log n) in the piece length.
void Tokenizer::merge_all(std::vector<int32_t>& syms) const {
  struct Candidate {
    int32_t rank, id;
    size_t pos;
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  const size_t n = syms.size();
  std::vector<ptrdiff_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  std::priority_queue<Candidate> queue;
  auto push = [&](size_t pos, size_t right) {
    auto it = merge_of_.find(pair_key(syms[pos], syms[right]));
    if (it != merge_of_.end()) queue.push({it->second.rank, it->second.id, pos});
  };
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<ptrdiff_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<ptrdiff_t>(i) + 1 : -1;
    if (i + 1 < n) push(i, i + 1);
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    if (!alive[top.pos] || next[top.pos] < 0) continue;
    const auto right = static_cast<size_t>(next[top.pos]);
    auto it = merge_of_.find(pair_key(syms[top.pos], syms[right]));
    if (it == merge_of_.end() || it->second.id != top.id) continue;
    syms[top.pos] = top.id;
    alive[right] = false;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = static_cast<ptrdiff_t>(top.pos);
    if (prev[top.pos] >= 0) push(static_cast<size_t>(prev[top.pos]), top.pos);
    if (next[top.pos] >= 0) push(top.pos, static_cast<size_t>(next[top.pos]));
  }
  size_t w = 0;
  for (size_t i = 0; i < n; ++i)
    if (alive[i]) syms[w++] = syms[i];
  syms.resize(w);
}

void Tokenizer::append_bpe(std::string_view piece, std::vector<int32_t>& out) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(std::string(piece));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> syms;
  if (config_.ignore_merges) {
    auto it = config_.vocab.find(bytes_to_chars(piece));
    if (it != config_.vocab.end()) syms.push_back(it->second);
  }
  if (syms.empty()) {
    bool after_unk = false;
    for (char c : piece) {
      const int32_t id = byte_id_[static_cast<uint8_t>(c)];
      // Without unk_token HF drops what the vocab cannot spell; with fuse_unk a run of such
      // bytes is one unk.
      if (id >= 0) {
        syms.push_back(id);
        after_unk = false;
      } else if (unk_id_ && !(config_.fuse_unk && after_unk)) {
        syms.push_back(*unk_id_);
        after_unk = true;
      }
    }
    merge_all(syms);
  }
  out.insert(out.end(), syms.begin(), syms.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kCacheLimit) cache_.clear();
  cache_.emplace(std::string(piece), std::move(syms));
}

void Tokenizer::append_text(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::string prefixed;
  if (config_.add_prefix_space && text[0] != ' ') {
    prefixed.reserve(text.size() + 1);
    prefixed.push_back(' ');
    prefixed.append(text);
    text = prefixed;
  }
  if (!config_.use_regex) return append_bpe(text, out);
  for (std::string_view piece : gpt2_split(text)) append_bpe(piece, out);
}

namespace {

// Calls on_text for the stretches between the listed added tokens (leftmost match, longest at
// that position, as HF's LeftmostLongest automaton) and on_token for each token found.
template <typename OnText, typename OnToken>
void split_added(std::string_view text, const std::vector<AddedToken>& tokens,
                 const std::vector<size_t>& longest_first, OnText on_text, OnToken on_token) {
  size_t start = 0;
  for (size_t i = 0; i < text.size() && !longest_first.empty();) {
    const AddedToken* hit = nullptr;
    for (size_t k : longest_first) {
      if (text.compare(i, tokens[k].content.size(), tokens[k].content) == 0) {
        hit = &tokens[k];
        break;
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    on_text(text.substr(start, i - start));
    on_token(hit->id);
    i += hit->content.size();
    start = i;
  }
  on_text(text.substr(start));
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  const size_t bad = utf8_invalid_at(text);
  MOEGRAD_CHECK(bad == std::string_view::npos, "Tokenizer::encode: text is not valid UTF-8 (byte ",
                bad, ")");
  std::vector<int32_t> ids;
  auto emit = [&](int32_t id) { ids.push_back(id); };
  auto normalized_text = [&](std::string_view raw) {
    if (raw.empty()) return;
    const std::string norm = config_.nfc ? nfc(raw) : std::string(raw);
    split_added(norm, config_.added_tokens, normalized_added_,
                [&](std::string_view t) { append_text(t, ids); }, emit);
  };
  split_added(text, config_.added_tokens, raw_added_, normalized_text, emit);
  return ids;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  MOEGRAD_CHECK(has_id(id), "Tokenizer: id ", id, " is not in the vocabulary (size ",
                vocab_size(), ")");
  // HF's ByteLevel decoder: a token whose every char is a mapped byte gives those bytes, any
  // other token (e.g. an added "  ") its own UTF-8.
  const std::string& token = id_to_token_[id];
  std::string mapped;
  for (char32_t c : utf8_decode(token)) {
    const int b = char_to_byte(c);
    if (b < 0) return token;
    mapped.push_back(static_cast<char>(b));
  }
  return mapped;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    const std::string piece = token_bytes(id);
    if (!(skip_special_tokens && is_special_[id])) bytes += piece;
  }
  return utf8_lossy(bytes);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  for (const AddedToken& a : config_.added_tokens)
    if (a.content == token) return a.id;
  auto it = config_.vocab.find(std::string(token));
  if (it == config_.vocab.end()) return std::nullopt;
  return it->second;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  MOEGRAD_CHECK(id >= 0 && id < vocab_size() && !id_to_token_[id].empty(), "Tokenizer::id_to_token: id ",
                id, " is not in the vocabulary (size ", vocab_size(), ")");
  return id_to_token_[id];
}

std::string Tokenizer::to_json() const {
  using ojson = nlohmann::ordered_json;
  ojson added = ojson::array();
  for (const AddedToken& a : config_.added_tokens)
    added.push_back({{"id", a.id}, {"content", a.content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", a.normalized}, {"special", a.special}});
  // Sorted by id, as HF writes it.
  std::vector<std::pair<int32_t, const std::string*>> by_id;
  for (const auto& [token, id] : config_.vocab) by_id.emplace_back(id, &token);
  std::sort(by_id.begin(), by_id.end());
  ojson vocab = ojson::object();
  for (const auto& [id, token] : by_id) vocab[*token] = id;
  ojson merges = ojson::array();
  for (const auto& [a, b] : config_.merges) merges.push_back(ojson::array({a, b}));
  ojson byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", config_.add_prefix_space},
                      {"trim_offsets", true}, {"use_regex", config_.use_regex}};
  ojson doc = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", config_.nfc ? ojson{{"type", "NFC"}} : ojson(nullptr)},
      {"pre_tokenizer", byte_level},
      {"post_processor", nullptr},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", config_.unk_token ? ojson(*config_.unk_token) : ojson(nullptr)},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", config_.fuse_unk},
        {"byte_fallback", false},
        {"ignore_merges", config_.ignore_merges},
        {"vocab", vocab},
        {"merges", merges}}}};
  return doc.dump(1, ' ', false);
}

void Tokenizer::save(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    MOEGRAD_CHECK(out, "Tokenizer::save: cannot open '", tmp, "' for writing");
    out << to_json();
    out.flush();
    MOEGRAD_CHECK(out, "Tokenizer::save: writing '", tmp, "' failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  MOEGRAD_CHECK(!ec, "Tokenizer::save: renaming '", tmp, "' to '", path, "' failed: ", ec.message());
}

}  // namespace moegrad::data
