#include "data/bpe_trainer.h"

#include <algorithm>
#include <fstream>
#include <queue>
#include <unordered_map>

#include "core/error.h"
#include "data/byte_level.h"

namespace moegrad::data {
namespace {

uint64_t pair_key(uint32_t a, uint32_t b) { return (static_cast<uint64_t>(a) << 32) | b; }
uint32_t left_of(uint64_t key) { return static_cast<uint32_t>(key >> 32); }
uint32_t right_of(uint64_t key) { return static_cast<uint32_t>(key); }

// HF's Merge ordering: the highest count first, ties to the smallest (left id, right id).
struct Candidate {
  int64_t count;
  uint64_t pair;
  size_t positions;  // index into the list of word-index lists
  bool operator<(const Candidate& o) const {
    return count != o.count ? count < o.count : pair > o.pair;
  }
};

struct Change {
  uint64_t pair;
  int delta;
  uint32_t word;
};

// HF's Word::merge: every (a, b) left to right becomes `merged`; neighbour pairs change.
void merge_word(std::vector<int32_t>& s, int32_t a, int32_t b, int32_t merged, uint32_t word,
                std::vector<Change>& changes) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != a || i + 1 >= s.size() || s[i + 1] != b) continue;
    if (i > 0) {
      changes.push_back({pair_key(s[i - 1], a), -1, word});
      changes.push_back({pair_key(s[i - 1], merged), 1, word});
    }
    s[i] = merged;
    s.erase(s.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    if (i + 1 < s.size()) {
      changes.push_back({pair_key(b, s[i + 1]), -1, word});
      changes.push_back({pair_key(merged, s[i + 1]), 1, word});
    }
  }
}

}  // namespace

Tokenizer train_bpe(const std::function<bool(std::string&)>& next, const BpeTrainerOptions& opts) {
  MOEGRAD_CHECK(opts.vocab_size > 0, "train_bpe: vocab_size must be positive, got ", opts.vocab_size);
  // 1. Word counts over the pre-tokenized corpus.
  std::unordered_map<std::string, int64_t> word_counts;
  std::string text;
  while (next(text)) {
    const size_t bad = utf8_invalid_at(text);
    MOEGRAD_CHECK(bad == std::string::npos, "train_bpe: a text is not valid UTF-8 (byte ", bad, ")");
    const std::string norm = opts.nfc ? nfc(text) : text;
    for (std::string_view piece : gpt2_split(norm)) ++word_counts[std::string(piece)];
  }

  // 2. Vocabulary: special tokens, then the byte chars by code point (HF sorts its alphabet so).
  std::vector<std::string> id_to_word;
  std::unordered_map<std::string, int32_t> word_to_id;
  auto add_word = [&](const std::string& w) {
    auto [it, inserted] = word_to_id.emplace(w, static_cast<int32_t>(id_to_word.size()));
    if (inserted) id_to_word.push_back(w);
    return it->second;
  };
  for (const std::string& s : opts.special_tokens) add_word(s);
  std::vector<char32_t> alphabet;
  for (int b = 0; b < 256; ++b) alphabet.push_back(byte_to_char(static_cast<uint8_t>(b)));
  std::sort(alphabet.begin(), alphabet.end());
  int32_t byte_id[324];
  for (char32_t c : alphabet) {
    std::string s;
    utf8_append(s, c);
    byte_id[c] = add_word(s);
  }

  // 3. Words as symbol ids; pair counts and where each pair occurs.
  std::vector<std::string> keys;
  keys.reserve(word_counts.size());
  for (const auto& kv : word_counts) keys.push_back(kv.first);
  std::sort(keys.begin(), keys.end());  // any order gives the same merges; this one is stable
  std::vector<std::vector<int32_t>> words(keys.size());
  std::vector<int64_t> counts(keys.size());
  std::unordered_map<uint64_t, int64_t> pair_counts;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where;
  for (size_t w = 0; w < keys.size(); ++w) {
    counts[w] = word_counts[keys[w]];
    for (char c : keys[w]) words[w].push_back(byte_id[byte_to_char(static_cast<uint8_t>(c))]);
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t p = pair_key(words[w][i], words[w][i + 1]);
      pair_counts[p] += counts[w];
      auto& list = where[p];
      if (list.empty() || list.back() != w) list.push_back(static_cast<uint32_t>(w));
    }
  }
  word_counts.clear();

  std::vector<std::vector<uint32_t>> position_lists;
  std::priority_queue<Candidate> queue;
  auto push_all = [&](std::unordered_map<uint64_t, std::vector<uint32_t>>& updates) {
    for (auto& [pair, list] : updates) {
      const int64_t count = pair_counts[pair];
      if (count <= 0) continue;
      std::sort(list.begin(), list.end());
      list.erase(std::unique(list.begin(), list.end()), list.end());
      position_lists.push_back(std::move(list));
      queue.push({count, pair, position_lists.size() - 1});
    }
    updates.clear();
  };
  push_all(where);

  // 4. Merge the best pair until the vocabulary is full.
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<Change> changes;
  while (static_cast<int32_t>(id_to_word.size()) < opts.vocab_size && !queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    const int64_t current = pair_counts[top.pair];
    if (top.count != current) {  // stale entry: requeue with the up-to-date count
      top.count = current;
      queue.push(top);
      continue;
    }
    if (top.count < 1 || opts.min_frequency > top.count) break;
    const int32_t a = static_cast<int32_t>(left_of(top.pair));
    const int32_t b = static_cast<int32_t>(right_of(top.pair));
    const int32_t merged = add_word(id_to_word[a] + id_to_word[b]);
    merges.emplace_back(id_to_word[a], id_to_word[b]);

    changes.clear();
    for (uint32_t w : position_lists[top.positions]) merge_word(words[w], a, b, merged, w, changes);
    std::vector<uint32_t>().swap(position_lists[top.positions]);
    for (const Change& c : changes) {
      pair_counts[c.pair] += c.delta * counts[c.word];
      if (c.delta > 0) where[c.pair].push_back(c.word);
    }
    push_all(where);
  }

  TokenizerConfig cfg;
  cfg.nfc = opts.nfc;
  for (size_t id = 0; id < id_to_word.size(); ++id) cfg.vocab.emplace(id_to_word[id], static_cast<int32_t>(id));
  cfg.merges = std::move(merges);
  for (const std::string& s : opts.special_tokens)
    cfg.added_tokens.push_back({word_to_id[s], s, /*special=*/true, /*normalized=*/false});
  return Tokenizer(std::move(cfg), "train_bpe");
}

Tokenizer train_bpe(const std::vector<std::string>& texts, const BpeTrainerOptions& opts) {
  size_t i = 0;
  return train_bpe(
      [&](std::string& out) {
        if (i == texts.size()) return false;
        out = texts[i++];
        return true;
      },
      opts);
}

Tokenizer train_bpe_files(const std::vector<std::string>& paths, const BpeTrainerOptions& opts) {
  size_t file = 0;
  std::ifstream in;
  return train_bpe(
      [&](std::string& out) {
        while (true) {
          if (in.is_open() && std::getline(in, out)) {
            if (!in.eof()) out.push_back('\n');
            return true;
          }
          if (in.is_open()) in.close();
          if (file == paths.size()) return false;
          in.open(paths[file], std::ios::binary);
          MOEGRAD_CHECK(in, "train_bpe_files: cannot open '", paths[file], "'");
          ++file;
        }
      },
      opts);
}

}  // namespace moegrad::data
