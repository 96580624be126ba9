// The packed multilingual loader: coverage of every token, the language schedule, determinism,
// resuming, data-parallel sharding and its errors.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "data/packed_loader.h"
#include "tests/data/shard_fixtures.h"
#include "tests/testing.h"

namespace moegrad::data {
namespace {

using moegrad::testing::expect_error;
using Row = std::vector<int64_t>;

constexpr int32_t kEos = 0;
constexpr int64_t kVocab = 1000;

std::vector<Row> rows_of(const Batch& b) {
  EXPECT_EQ(b.input_ids.dtype(), DType::I64);
  int64_t n = b.input_ids.shape()[0], len = b.input_ids.shape()[1];
  const int64_t* p = b.input_ids.data<int64_t>();
  std::vector<Row> rows;
  for (int64_t i = 0; i < n; ++i) rows.emplace_back(p + i * len, p + (i + 1) * len);
  return rows;
}

// Documents of distinct contents with ids in [base, base + 100), of lengths 0 to 11, so that
// rows show which language and which document their tokens came from.
Documents make_docs(int n, int32_t base) {
  Documents docs;
  for (int d = 0; d < n; ++d) {
    std::vector<int32_t> ids;
    for (int t = 0; t < (d * 5) % 12; ++t) ids.push_back(base + (d * 7 + t) % 100);
    docs.push_back({"doc" + std::to_string(d), ids});
  }
  return docs;
}

class PackedLoaderTest : public ShardTest {
 protected:
  // Shards for `languages`, the i-th with ids in [100 (i + 1), 100 (i + 2)).
  std::vector<TokenShard> shards(const std::vector<std::string>& languages, int docs = 10) {
    std::vector<TokenShard> out;
    for (size_t i = 0; i < languages.size(); ++i) {
      out.push_back(TokenShard::open(write_shard(languages[i] + ".shard", languages[i], kVocab,
                                                 make_docs(docs, int32_t(100 * (i + 1))))));
    }
    return out;
  }

  static LoaderOptions options(int64_t seq_len, int64_t batch_size, uint64_t seed = 1) {
    LoaderOptions o;
    o.seq_len = seq_len;
    o.batch_size = batch_size;
    o.seed = seed;
    o.eos_id = kEos;
    return o;
  }
};

// The token stream of `n` batches, rows concatenated.
std::vector<int64_t> stream_of(PackedLoader& loader, int n) {
  std::vector<int64_t> out;
  for (int i = 0; i < n; ++i) {
    for (const Row& r : rows_of(loader.next())) out.insert(out.end(), r.begin(), r.end());
  }
  return out;
}

// Splits a stream at every eos: the documents in the order they were visited.
std::vector<std::vector<int32_t>> split_at_eos(const std::vector<int64_t>& stream) {
  std::vector<std::vector<int32_t>> docs(1);
  for (int64_t t : stream) {
    if (t == kEos) {
      docs.emplace_back();
    } else {
      docs.back().push_back(int32_t(t));
    }
  }
  return docs;
}

TEST_F(PackedLoaderTest, EveryEpochVisitsEveryDocumentOnceInOrder) {
  const int num_docs = 24;
  Documents docs = make_docs(num_docs, 100);
  int64_t epoch_tokens = num_docs;
  for (const auto& d : docs) epoch_tokens += int64_t(d.second.size());
  PackedLoader loader(shards({"en"}, num_docs), options(7, 3));
  // Enough batches for a bit more than two epochs.
  int batches = int(2 * epoch_tokens / 21) + 2;
  std::vector<std::vector<int32_t>> seen = split_at_eos(stream_of(loader, batches));
  ASSERT_GT(seen.size(), size_t(2 * num_docs));

  std::vector<std::vector<int32_t>> expected;
  for (const auto& d : docs) expected.push_back(d.second);
  std::sort(expected.begin(), expected.end());
  std::vector<std::vector<int32_t>> epochs[2];
  for (int e = 0; e < 2; ++e) {
    epochs[e].assign(seen.begin() + e * num_docs, seen.begin() + (e + 1) * num_docs);
    std::vector<std::vector<int32_t>> sorted = epochs[e];
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, expected) << "epoch " << e;
  }
  // A shuffled order, and a different one each epoch.
  std::vector<std::vector<int32_t>> in_file_order;
  for (const auto& d : docs) in_file_order.push_back(d.second);
  EXPECT_NE(epochs[0], in_file_order);
  EXPECT_NE(epochs[0], epochs[1]);
}

TEST_F(PackedLoaderTest, LanguagesAlternateRoundRobin) {
  // Given out of order: languages are ordered by name.
  PackedLoader loader(shards({"fr", "de", "en"}), options(4, 4));
  EXPECT_EQ(loader.languages(), (std::vector<std::string>{"de", "en", "fr"}));
  std::map<std::string, int64_t> base = {{"fr", 100}, {"de", 200}, {"en", 300}};
  int64_t s = 0;
  for (int b = 0; b < 5; ++b) {
    Batch batch = loader.next();
    ASSERT_EQ(batch.input_ids.shape(), (Shape{4, 4}));
    std::vector<Row> rows = rows_of(batch);
    ASSERT_EQ(batch.languages.size(), 4u);
    for (size_t r = 0; r < rows.size(); ++r, ++s) {
      EXPECT_EQ(batch.languages[r], loader.languages()[size_t(s % 3)]);
      // One language per row.
      for (int64_t t : rows[r]) {
        if (t == kEos) continue;
        EXPECT_EQ(t / 100 * 100, base[batch.languages[r]]) << "row " << s;
      }
    }
  }
}

TEST_F(PackedLoaderTest, WeightsGiveExactProportions) {
  LoaderOptions o = options(3, 4);
  o.weights = {{"en", 3.0}, {"de", 1.0}};
  PackedLoader loader(shards({"en", "de"}), o);
  for (int b = 0; b < 10; ++b) {
    std::vector<std::string> langs = loader.next().languages;
    // Each batch of 4 is exactly 3 en : 1 de.
    EXPECT_EQ(std::count(langs.begin(), langs.end(), "en"), 3) << "batch " << b;
  }
  o.weights = {{"en", 0.7}, {"de", 0.2}, {"fr", 0.1}};
  o.batch_size = 10;
  PackedLoader three(shards({"en", "de", "fr"}), o);
  std::map<std::string, int> counts;
  for (int b = 0; b < 10; ++b) {
    for (const std::string& l : three.next().languages) ++counts[l];
  }
  EXPECT_EQ(counts, (std::map<std::string, int>{{"de", 20}, {"en", 70}, {"fr", 10}}));
}

TEST_F(PackedLoaderTest, DeterministicGivenTheSeed) {
  std::vector<TokenShard> s = shards({"de", "en"});
  PackedLoader a(s, options(5, 3, 7)), b(s, options(5, 3, 7)), c(s, options(5, 3, 8));
  std::vector<int64_t> sa = stream_of(a, 6), sb = stream_of(b, 6), sc = stream_of(c, 6);
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST_F(PackedLoaderTest, ResumeContinuesBitIdentically) {
  LoaderOptions o = options(6, 2, 3);
  o.weights = {{"de", 2.0}, {"en", 1.0}, {"fr", 1.5}};
  std::vector<TokenShard> s = shards({"de", "en", "fr"}, 5);
  PackedLoader uninterrupted(s, o);
  for (int k = 0; k < 4; ++k) uninterrupted.next();
  std::string state = uninterrupted.state_json();

  PackedLoader resumed(s, o);
  resumed.next();  // restore() replaces whatever position a loader had
  resumed.restore(state);
  EXPECT_EQ(resumed.state_json(), state);
  // Long enough to cross several epochs of these small shards.
  for (int k = 0; k < 30; ++k) {
    Batch x = uninterrupted.next(), y = resumed.next();
    ASSERT_EQ(rows_of(x), rows_of(y)) << "batch " << k;
    ASSERT_EQ(x.languages, y.languages);
  }
}

TEST_F(PackedLoaderTest, RanksTogetherSeeTheSingleRankStream) {
  std::vector<TokenShard> s = shards({"de", "en", "fr"}, 6);
  PackedLoader single(s, options(5, 6));
  std::vector<PackedLoader> ranks;
  for (int64_t r = 0; r < 3; ++r) {
    LoaderOptions o = options(5, 2);
    o.rank = r;
    o.world_size = 3;
    ranks.emplace_back(s, o);
  }
  for (int b = 0; b < 8; ++b) {
    Batch whole = single.next();
    std::vector<Row> rows;
    std::vector<std::string> langs;
    for (PackedLoader& rank : ranks) {
      Batch part = rank.next();
      for (const Row& r : rows_of(part)) rows.push_back(r);
      langs.insert(langs.end(), part.languages.begin(), part.languages.end());
    }
    ASSERT_EQ(rows, rows_of(whole)) << "batch " << b;
    ASSERT_EQ(langs, whole.languages);
  }
  // Every rank holds the same position, the single rank's.
  EXPECT_EQ(ranks[1].state_json(), single.state_json());
}

TEST_F(PackedLoaderTest, ConstructorErrors) {
  std::vector<TokenShard> s = shards({"de", "en"});
  expect_error([&] { PackedLoader({}, options(4, 1)); }, "loader: no token shards given");
  expect_error([&] { PackedLoader(s, options(1, 1)); }, "seq_len must be at least 2, got 1");
  expect_error([&] { PackedLoader(s, options(4, 0)); }, "batch_size must be at least 1, got 0");
  LoaderOptions o = options(4, 1);
  o.eos_id = int32_t(kVocab);
  expect_error([&] { PackedLoader(s, o); }, "eos_id 1000 is outside the vocabulary [0, 1000)");
  o = options(4, 1);
  o.rank = 2;
  o.world_size = 2;
  expect_error([&] { PackedLoader(s, o); }, "rank 2 is outside world_size 2");

  TokenShard de2 = TokenShard::open(write_shard("de2.shard", "de", kVocab, make_docs(3, 100)));
  expect_error([&] { PackedLoader({s[0], s[1], de2}, options(4, 1)); },
               "language 'de' has two shards");
  TokenShard empty = TokenShard::open(write_shard("fr.shard", "fr", kVocab, {{"a", {}}}));
  expect_error([&] { PackedLoader({s[0], empty}, options(4, 1)); },
               empty.path() + " (language 'fr') holds no tokens");
  TokenShard big = TokenShard::open(write_shard("pl.shard", "pl", 2000, make_docs(3, 100)));
  expect_error([&] { PackedLoader({s[0], big}, options(4, 1)); },
               "shards have different vocab sizes: " + s[0].path() + " has 1000, " + big.path() +
                   " has 2000");
}

TEST_F(PackedLoaderTest, WeightErrors) {
  std::vector<TokenShard> s = shards({"de", "en"});
  LoaderOptions o = options(4, 1);
  o.weights = {{"de", 1.0}, {"xx", 1.0}};
  expect_error([&] { PackedLoader(s, o); },
               "weight given for language 'xx', which has no shard (languages: [\"de\",\"en\"])");
  o.weights = {{"de", 1.0}, {"en", 0.0}};
  expect_error([&] { PackedLoader(s, o); }, "weight of 'en' must be positive and finite, got 0");
  o.weights = {{"de", 1.0}, {"en", -2.0}};
  expect_error([&] { PackedLoader(s, o); }, "weight of 'en' must be positive");
  o.weights = {{"de", 1.0}};
  expect_error([&] { PackedLoader(s, o); }, "no weight for language 'en'");
  o.weights = {{"de", 1.0}, {"de", 2.0}, {"en", 1.0}};
  expect_error([&] { PackedLoader(s, o); }, "language 'de' has two weights");
}

TEST_F(PackedLoaderTest, RestoreRefusesOtherDataOrOptions) {
  std::vector<TokenShard> s = shards({"de", "en"});
  PackedLoader saved(s, options(4, 2, 5));
  saved.next();
  std::string state = saved.state_json();

  expect_error([&] { PackedLoader(s, options(4, 2, 6)).restore(state); },
               "loader state does not fit: it was saved with seed 5, this loader has 6");
  expect_error([&] { PackedLoader(s, options(8, 2, 5)).restore(state); },
               "saved with seq_len 4, this loader has 8");
  LoaderOptions weighted = options(4, 2, 5);
  weighted.weights = {{"de", 2.0}, {"en", 1.0}};
  expect_error([&] { PackedLoader(s, weighted).restore(state); }, "saved with weights [1.0,1.0]");
  expect_error([&] { PackedLoader({s[0]}, options(4, 2, 5)).restore(state); },
               "saved for languages [\"de\",\"en\"], this loader has [\"de\"]");
  // Same language, other tokens: the message names the file.
  TokenShard other = TokenShard::open(write_shard("en2.shard", "en", kVocab, make_docs(4, 300)));
  expect_error([&] { PackedLoader({s[0], other}, options(4, 2, 5)).restore(state); },
               "but " + other.path() + " is {");

  // Another batch size or world size continues the same global stream.
  PackedLoader wider(s, options(4, 4, 5));
  wider.restore(state);
  EXPECT_EQ(wider.state_json(), state);
}

TEST_F(PackedLoaderTest, RestoreRefusesMalformedState) {
  std::vector<TokenShard> s = shards({"de", "en"});
  PackedLoader loader(s, options(4, 2));
  expect_error([&] { loader.restore("{not json"); }, "loader state: invalid JSON");
  expect_error([&] { loader.restore("[1, 2]"); }, "loader state is not a packed loader state");
  nlohmann::json state = nlohmann::json::parse(loader.state_json());
  auto refused = [&](const std::string& path, const nlohmann::json& value,
                     const std::string& message) {
    nlohmann::json bad = state;
    bad[nlohmann::json::json_pointer(path)] = value;
    expect_error([&] { loader.restore(bad.dump()); }, message);
  };
  nlohmann::json no_streams = state;
  no_streams.erase("streams");
  expect_error([&] { loader.restore(no_streams.dump()); },
               "loader state: field 'streams' is missing");
  refused("/version", 2, "loader state: field 'version' is 2, this build reads 1");
  refused("/streams/0/position", 10,
          "loader state: field 'streams[0].position' must be an integer from 0 to 9, got 10");
  refused("/streams/0/epoch", 1.5, "field 'streams[0].epoch' must be an integer >= 0, got 1.5");
  refused("/streams/1/offset", 1000,
          "field 'streams[1].offset' is 1000: past the end of the document");
  refused("/streams/1/offset", 1e30, "field 'streams[1].offset' must be an integer >= 0");
  refused("/streams/1/language", "de", "field 'streams[1].language' is 'de', expected 'en'");
  refused("/streams", nlohmann::json::array({state["streams"][0]}),
          "field 'streams' holds 1 streams for 2 languages");
  refused("/sequences", "3", "field 'sequences' must be an integer >= 0, got \"3\"");
  refused("/sequences", 3, "counts add up to 0, not to the 3 sequences");
  // A failed restore leaves the loader as it was.
  PackedLoader fresh(s, options(4, 2));
  EXPECT_EQ(rows_of(loader.next()), rows_of(fresh.next()));
}

}  // namespace
}  // namespace moegrad::data
