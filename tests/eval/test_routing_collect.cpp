// Collecting routing statistics from token shards: windows within documents, named by them,
// the token budget per language, and a statistics table that does not fit the model refused.
#include <filesystem>

#include "core/random.h"
#include "eval/routing_collect.h"
#include "tests/testing.h"
#include "tests/tiny_olmoe.h"

namespace moegrad::eval {
namespace {

namespace fs = std::filesystem;

// One shard per language with documents of 5, 12 and 3 tokens named p0, p1, p2.
std::vector<data::TokenShard> shards(const fs::path& dir) {
  fs::create_directories(dir);
  std::vector<data::TokenShard> out;
  for (const char* lang : {"de", "en"}) {
    const std::string path = (dir / (std::string(lang) + ".shard")).string();
    data::TokenShardWriter w(path, lang, 40);
    int32_t next = 0;
    for (int n : {5, 12, 3}) {
      std::vector<int32_t> ids;
      for (int i = 0; i < n; ++i) ids.push_back(next++ % 40);
      std::string name = "p";  // p1, p2, p0 (appended: GCC 12 warns on "p" + string)
      name += std::to_string(n / 5);
      w.add_document(ids, name);
    }
    w.finish();
    out.push_back(data::TokenShard::open(path));
  }
  return out;
}

TEST(RoutingCollect, WindowsStayInsideDocumentsAndCarryTheirNames) {
  const fs::path dir = fs::temp_directory_path() / "moegrad_routing_collect";
  Generator gen(1);
  InitOptions init;
  init.gen = &gen;
  OlmoeForCausalLM model(testing::tiny_olmoe_config(40, 4, 2, 16), init);
  const std::vector<data::TokenShard> s = shards(dir);
  EXPECT_EQ(data::shard_languages(dir.string()), (std::vector<std::string>{"de", "en"}));

  RoutingStats stats(2, 4, 2);
  RoutingCollectOptions o;
  o.seq_len = 4;
  o.batch_size = 2;
  collect_routing(model, s, o, stats);
  for (const char* lang : {"de", "en"}) {
    const LanguageRouting& l = stats.languages().at(lang);
    EXPECT_EQ(l.tokens, 20) << lang;
    for (const auto& layer : l.counts) {
      int64_t picks = 0;
      for (int64_t c : layer) picks += c;
      EXPECT_EQ(picks, 40) << lang;
    }
    // Adjacent pairs inside windows: (4-1)+(1-1) + 3*(4-1) + (3-1).
    EXPECT_EQ(l.consistency_pairs[0], 3 + 9 + 2) << lang;
  }
  // Windows: 4+1 of p1 (5 tokens), 4+4+4 of p2, 3 of p0, in each language.
  ASSERT_EQ(stats.sequences().size(), 12u);
  std::map<std::string, int> windows;
  for (const SequenceRouting& q : stats.sequences()) ++windows[q.language + "/" + q.document];
  EXPECT_EQ(windows["en/p1"], 2);
  EXPECT_EQ(windows["en/p2"], 3);
  EXPECT_EQ(windows["de/p0"], 1);

  RoutingStats capped(2, 4, 2);
  o.max_tokens = 7;
  collect_routing(model, s, o, capped);
  EXPECT_EQ(capped.languages().at("en").tokens, 7);

  RoutingStats wrong(2, 5, 2);
  testing::expect_error([&] { collect_routing(model, s, o, wrong); },
                        "statistics of 2 layers x 5 experts");
  o.seq_len = 17;
  testing::expect_error([&] { collect_routing(model, s, o, capped); },
                        "max_position_embeddings, 16");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moegrad::eval
