// The routing statistics collector on a tiny model: its counts and probability sums against a
// direct count of the captured routing, forced routing, per-sequence means, and its JSON.
#include <set>

#include "core/random.h"
#include "eval/routing_stats.h"
#include "moe/olmoe.h"
#include "tests/testing.h"
#include "tests/tiny_olmoe.h"

namespace moegrad::eval {
namespace {

struct Fixture {
  Generator gen{4};
  InitOptions init() {
    InitOptions o;
    o.gen = &gen;
    return o;
  }
  OlmoeForCausalLM model{testing::tiny_olmoe_config(50, 5, 2, 32), init()};
  Tensor ids = randint(0, 50, {3, 7}, gen);  // rows: en, de, en
};

TEST(RoutingStats, CountsWhatTheRouterChose) {
  Fixture f;
  RoutingStats stats(2, 5, 2);
  // The same forward, captured by the collector and counted here directly.
  std::map<std::string, std::vector<std::vector<int64_t>>> direct;
  direct["en"] = direct["de"] = std::vector<std::vector<int64_t>>(2, std::vector<int64_t>(5, 0));
  const std::vector<std::string> langs = {"en", "de", "en"};
  RouterCapture collect = stats.capture(langs, 7, {"doc0", "doc1", "doc2"});
  RouterHooks hooks;
  hooks.capture = [&](const RouterRecord& r) {
    collect(r);
    const std::vector<int64_t> idx = r.topk_indices.to_vector<int64_t>();
    for (size_t i = 0; i < idx.size(); ++i)
      ++direct[langs[i / 2 / 7]][size_t(r.layer)][size_t(idx[i])];
  };
  f.model.set_router_hooks(hooks);
  f.model.forward(f.ids);

  ASSERT_EQ(stats.languages().size(), 2u);
  EXPECT_EQ(stats.languages().at("en").tokens, 14);
  EXPECT_EQ(stats.languages().at("de").tokens, 7);
  for (const auto& [name, l] : stats.languages()) {
    EXPECT_EQ(l.counts, direct[name]) << name;
    for (int64_t layer = 0; layer < 2; ++layer) {
      double p = 0;
      for (double x : l.prob_sum[size_t(layer)]) p += x;
      EXPECT_NEAR(p, double(l.tokens), 1e-9) << name << " layer " << layer;  // each sums to 1
      EXPECT_EQ(l.consistency_pairs[size_t(layer)], l.tokens / 7 * 6);
      EXPECT_GE(l.consistency_sum[size_t(layer)], 0.0);
      EXPECT_LE(l.consistency_sum[size_t(layer)], double(l.consistency_pairs[size_t(layer)]));
    }
  }
  ASSERT_EQ(stats.sequences().size(), 3u);
  EXPECT_EQ(stats.sequences()[1].language, "de");
  EXPECT_EQ(stats.sequences()[1].document, "doc1");
  for (const SequenceRouting& s : stats.sequences())
    for (const auto& layer : s.mean_prob) {
      double sum = 0;
      for (double x : layer) sum += x;
      EXPECT_NEAR(sum, 1.0, 1e-12);
    }
}

TEST(RoutingStats, ForcedRoutingIsCountedExactly) {
  Fixture f;
  RoutingStats stats(2, 5, 2);
  RouterHooks hooks;
  hooks.capture = stats.capture({"en", "de", "en"}, 7, {}, /*keep_sequences=*/false);
  hooks.intervene = restrict_experts({1, 3});  // top-2 of two allowed experts: both, always
  f.model.set_router_hooks(hooks);
  f.model.forward(f.ids);
  const LanguageRouting& en = stats.languages().at("en");
  for (size_t layer = 0; layer < 2; ++layer) {
    EXPECT_EQ(en.counts[layer], (std::vector<int64_t>{0, 14, 0, 14, 0}));
    EXPECT_EQ(en.consistency_sum[layer], double(en.consistency_pairs[layer]));  // always the same
    EXPECT_EQ(en.prob_sum[layer][0], 0.0);  // -inf logits
  }
  EXPECT_TRUE(stats.sequences().empty());
}

TEST(RoutingStats, JsonRoundTripsAndBadDocumentsAreNamed) {
  Fixture f;
  RoutingStats stats(2, 5, 2);
  RouterHooks hooks;
  hooks.capture = stats.capture({"en", "de", "en"}, 7, {"a", "b", "c"});
  f.model.set_router_hooks(hooks);
  f.model.forward(f.ids);
  const nlohmann::json j = stats.to_json();
  const RoutingStats back = RoutingStats::from_json(j);
  EXPECT_EQ(back.to_json(), j);

  nlohmann::json bad = j;
  bad["languages"]["de"]["counts"][1].erase(0);
  testing::expect_error([&] { RoutingStats::from_json(bad); },
                        "languages.de.counts must be [2][5]");
  bad = j;
  bad["languages"]["en"].erase("tokens");
  testing::expect_error([&] { RoutingStats::from_json(bad); }, "languages.en has no 'tokens'");
  testing::expect_error([&] { RoutingStats::from_json({{"format", "x"}}); },
                        "not a moegrad.routing_stats");
  // A capture for batches of another shape is refused, naming the shapes.
  RouterHooks wrong;
  wrong.capture = stats.capture({"en", "de"}, 7);
  f.model.set_router_hooks(wrong);
  testing::expect_error([&] { f.model.forward(f.ids); }, "expected [14, 5]");
}

}  // namespace
}  // namespace moegrad::eval
