#include "data/packed_loader.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/checksum.h"
#include "core/io/json_reader.h"

namespace moegrad::data {
namespace {

using json = nlohmann::json;

constexpr const char* kStateFormat = "moegrad.packed_loader";
constexpr int kStateVersion = 1;

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Fisher-Yates over [0, n), from a stream keyed by the seed, the language and the epoch.
std::vector<int64_t> permutation(uint64_t seed, const std::string& language, int64_t epoch,
                                 int64_t n) {
  uint64_t key = seed;
  uint64_t state = splitmix64(key) ^ fnv1a64(language.data(), language.size());
  state = splitmix64(state) ^ uint64_t(epoch);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t(0));
  for (int64_t i = n - 1; i > 0; --i) {
    // Lemire's multiply-shift maps 64 random bits onto [0, i]; its bias, i / 2^64, is nil here.
    auto j = int64_t((unsigned __int128)splitmix64(state) * uint64_t(i + 1) >> 64);
    std::swap(order[size_t(i)], order[size_t(j)]);
  }
  return order;
}

json shard_fingerprint(const TokenShard& s) {
  return {{"language", s.language()},
          {"vocab_size", s.vocab_size()},
          {"num_tokens", s.num_tokens()},
          {"num_documents", s.num_documents()},
          {"token_checksum", s.header().token_checksum}};
}

}  // namespace

PackedLoader::PackedLoader(std::vector<TokenShard> shards, LoaderOptions options)
    : shards_(std::move(shards)), options_(std::move(options)) {
  const LoaderOptions& o = options_;
  MOEGRAD_CHECK(!shards_.empty(), "loader: no token shards given");
  MOEGRAD_CHECK(o.seq_len >= 2, "loader: seq_len must be at least 2, got ", o.seq_len);
  MOEGRAD_CHECK(o.batch_size >= 1, "loader: batch_size must be at least 1, got ", o.batch_size);
  MOEGRAD_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "loader: rank ",
                o.rank, " is outside world_size ", o.world_size);
  std::sort(shards_.begin(), shards_.end(), [](const TokenShard& a, const TokenShard& b) {
    return a.language() < b.language();
  });
  for (size_t i = 0; i < shards_.size(); ++i) {
    const TokenShard& s = shards_[i];
    if (i > 0) {
      const TokenShard& prev = shards_[i - 1];
      MOEGRAD_CHECK(s.language() != prev.language(), "loader: language '", s.language(),
                    "' has two shards: ", prev.path(), " and ", s.path());
      MOEGRAD_CHECK(s.vocab_size() == shards_[0].vocab_size(),
                    "loader: shards have different vocab sizes: ", shards_[0].path(), " has ",
                    shards_[0].vocab_size(), ", ", s.path(), " has ", s.vocab_size());
    }
    MOEGRAD_CHECK(s.num_tokens() > 0, "loader: ", s.path(), " (language '", s.language(),
                  "') holds no tokens");
    languages_.push_back(s.language());
  }
  const int64_t vocab = shards_[0].vocab_size();
  MOEGRAD_CHECK(o.eos_id >= 0 && o.eos_id < vocab, "loader: eos_id ", o.eos_id,
                " is outside the vocabulary [0, ", vocab, ") of ", shards_[0].path());

  weights_.assign(shards_.size(), 1.0);
  if (!o.weights.empty()) {
    std::map<std::string, double> given;
    for (const auto& [language, w] : o.weights) {
      MOEGRAD_CHECK(std::find(languages_.begin(), languages_.end(), language) != languages_.end(),
                    "loader: weight given for language '", language,
                    "', which has no shard (languages: ", json(languages_).dump(), ")");
      MOEGRAD_CHECK(std::isfinite(w) && w > 0, "loader: weight of '", language,
                    "' must be positive and finite, got ", w);
      MOEGRAD_CHECK(given.emplace(language, w).second, "loader: language '", language,
                    "' has two weights");
    }
    for (size_t i = 0; i < languages_.size(); ++i) {
      auto it = given.find(languages_[i]);
      MOEGRAD_CHECK(it != given.end(), "loader: no weight for language '", languages_[i],
                    "' (give every language a weight, or none for uniform)");
      weights_[i] = it->second;
    }
  }
  for (double w : weights_) weight_sum_ += w;

  streams_.resize(shards_.size());
  for (size_t i = 0; i < shards_.size(); ++i) start_epoch(i, 0);
}

void PackedLoader::start_epoch(size_t i, int64_t epoch) {
  Stream& st = streams_[i];
  st.epoch = epoch;
  st.position = 0;
  st.offset = 0;
  st.order = permutation(options_.seed, languages_[i], epoch, shards_[i].num_documents());
}

size_t PackedLoader::pick_language() {
  // Recomputed from integer counts every time, so no rounding error accumulates.
  size_t best = 0;
  double best_value = 0;
  for (size_t i = 0; i < streams_.size(); ++i) {
    double value = double(sequence_ + 1) * weights_[i] - double(streams_[i].sequences) * weight_sum_;
    if (i == 0 || value > best_value) {
      best = i;
      best_value = value;
    }
  }
  ++streams_[best].sequences;
  ++sequence_;
  return best;
}

void PackedLoader::take(size_t i, int64_t n, int32_t* out) {
  const TokenShard& shard = shards_[i];
  Stream& st = streams_[i];
  while (n > 0) {
    auto [begin, end] = shard.document_range(st.order[size_t(st.position)]);
    const int64_t doc_tokens = end - begin;
    const int64_t k = std::min(n, doc_tokens + 1 - st.offset);  // + 1: the eos
    if (out) {
      const int64_t from_doc = std::min(k, doc_tokens - st.offset);
      shard.copy_tokens(begin + st.offset, from_doc, out);
      if (k > from_doc) out[from_doc] = options_.eos_id;
      out += k;
    }
    st.offset += k;
    n -= k;
    if (st.offset == doc_tokens + 1) {
      st.offset = 0;
      if (++st.position == shard.num_documents()) start_epoch(i, st.epoch + 1);
    }
  }
}

Batch PackedLoader::next() {
  const int64_t seq_len = options_.seq_len;
  const int64_t first = options_.rank * options_.batch_size;
  const int64_t last = first + options_.batch_size;
  Batch batch;
  batch.input_ids = empty({options_.batch_size, seq_len}, DType::I64);
  int64_t* ids = batch.input_ids.data<int64_t>();
  std::vector<int32_t> row(size_t(seq_len), 0);
  for (int64_t g = 0; g < options_.batch_size * options_.world_size; ++g) {
    size_t language = pick_language();
    bool mine = g >= first && g < last;
    take(language, seq_len, mine ? row.data() : nullptr);
    if (!mine) continue;
    std::copy(row.begin(), row.end(), ids + (g - first) * seq_len);
    batch.languages.push_back(languages_[language]);
  }
  return batch;
}

std::string PackedLoader::state_json() const {
  json shards = json::array();
  json streams = json::array();
  for (size_t i = 0; i < shards_.size(); ++i) {
    shards.push_back(shard_fingerprint(shards_[i]));
    const Stream& st = streams_[i];
    streams.push_back({{"language", languages_[i]},
                       {"sequences", st.sequences},
                       {"epoch", st.epoch},
                       {"position", st.position},
                       {"offset", st.offset}});
  }
  json state = {{"format", kStateFormat},
                {"version", kStateVersion},
                {"seq_len", options_.seq_len},
                {"seed", options_.seed},
                {"eos_id", options_.eos_id},
                {"weights", weights_},
                {"shards", shards},
                {"sequences", sequence_},
                {"streams", streams}};
  return state.dump();
}

void PackedLoader::restore(const std::string& text) {
  json state;
  try {
    state = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(std::string("loader state: invalid JSON: ") + e.what());
  }
  restore(JsonReader(state, "loader state"));
}

void PackedLoader::restore(const JsonReader& state) {
  if (!(state.has("format") && state.json()["format"] == kStateFormat))
    state.fail("is not a packed loader state");
  const int64_t version = state["version"].integer();
  if (version != kStateVersion)
    state["version"].fail(detail::concat("is ", version, ", this build reads ", kStateVersion));
  // The fingerprint first: a state from other data fails here, naming what differs.
  const std::string where = state.where();
  auto expect_same = [&](const char* key, const json& here) {
    MOEGRAD_CHECK(state[key].json() == here, where, " does not fit: it was saved with ", key, " ",
                  state[key].json().dump(), ", this loader has ", here.dump());
  };
  expect_same("seq_len", options_.seq_len);
  expect_same("seed", options_.seed);
  expect_same("eos_id", options_.eos_id);
  const std::vector<JsonReader> saved_shards = state["shards"].elements();
  std::vector<std::string> saved_languages;
  for (const JsonReader& s : saved_shards) saved_languages.push_back(s["language"].string());
  MOEGRAD_CHECK(saved_languages == languages_, where, " does not fit: it was saved for languages ",
                json(saved_languages).dump(), ", this loader has ", json(languages_).dump());
  for (size_t i = 0; i < shards_.size(); ++i) {
    json here = shard_fingerprint(shards_[i]);
    MOEGRAD_CHECK(saved_shards[i].json() == here, where, " does not fit: it was saved for shard ",
                  saved_shards[i].json().dump(), ", but ", shards_[i].path(), " is ",
                  here.dump());
  }
  expect_same("weights", weights_);

  const int64_t sequence = state["sequences"].integer(0);
  const std::vector<JsonReader> saved_streams = state["streams"].elements();
  if (saved_streams.size() != streams_.size())
    state["streams"].fail(detail::concat("holds ", saved_streams.size(), " streams for ",
                                         streams_.size(), " languages"));
  std::vector<Stream> streams(streams_.size());
  int64_t total = 0;
  for (size_t i = 0; i < streams.size(); ++i) {
    const JsonReader& s = saved_streams[i];
    Stream& st = streams[i];
    const std::string& language = languages_[i];
    const std::string saved_language = s["language"].string();
    if (saved_language != language)
      s["language"].fail("is '" + saved_language + "', expected '" + language + "'");
    const int64_t docs = shards_[i].num_documents();
    st.sequences = s["sequences"].integer(0);
    st.epoch = s["epoch"].integer(0);
    st.position = s["position"].integer(0, docs - 1);
    st.offset = s["offset"].integer(0);
    st.order = permutation(options_.seed, language, st.epoch, docs);
    auto [begin, end] = shards_[i].document_range(st.order[size_t(st.position)]);
    if (st.offset > end - begin)
      s["offset"].fail(detail::concat("is ", st.offset, ": past the end of the document (",
                                      end - begin, " tokens)"));
    total += st.sequences;
  }
  MOEGRAD_CHECK(total == sequence, where, ": the per-language counts add up to ", total,
                ", not to the ", sequence, " sequences taken");
  streams_ = std::move(streams);
  sequence_ = sequence;
}

}  // namespace moegrad::data
