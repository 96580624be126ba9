// Vocabulary overlap against hand-computed values.
#include "eval/routing_metrics.h"
#include "eval/vocab_overlap.h"
#include "tests/testing.h"

namespace moegrad::eval {
namespace {

TEST(VocabOverlap, JaccardCountsTypesSeenEnoughTimes) {
  const TypeCounts a{{1, 5}, {2, 1}, {3, 2}}, b{{2, 4}, {3, 1}, {4, 9}};
  EXPECT_DOUBLE_EQ(jaccard_overlap(a, b), 2.0 / 4.0);  // {2,3} of {1,2,3,4}
  // With min_count 2: A uses {1,3}, B {2,4}: nothing shared.
  EXPECT_DOUBLE_EQ(jaccard_overlap(a, b, 2), 0.0);
  EXPECT_DOUBLE_EQ(jaccard_overlap(a, a), 1.0);
  EXPECT_DOUBLE_EQ(jaccard_overlap({}, {}), 0.0);
  EXPECT_DOUBLE_EQ(jaccard_overlap(a, b), jaccard_overlap(b, a));
  EXPECT_THROW(jaccard_overlap(a, b, 0), Error);
}

TEST(VocabOverlap, WeightedIsTheSharedShareOfRunningText) {
  // f_A = (1: .625, 2: .125, 3: .25), f_B = (2: .2857, 3: .1429, 4: .5714):
  // min over shared types = .125 + 1/7.
  const TypeCounts a{{1, 5}, {2, 1}, {3, 2}}, b{{2, 4}, {3, 2}, {4, 8}};
  EXPECT_NEAR(weighted_overlap(a, b), 0.125 + 2.0 / 14.0, 1e-15);
  EXPECT_NEAR(weighted_overlap(b, a), weighted_overlap(a, b), 1e-15);
  EXPECT_NEAR(weighted_overlap(a, TypeCounts{{1, 10}, {2, 2}, {3, 4}}), 1.0, 1e-15);
  EXPECT_EQ(weighted_overlap(a, {}), 0.0);
}

TEST(VocabOverlap, PairsAreCorrelatedWithTheLastLayersDivergence) {
  // Three languages; the last layer's JSD falls as the weighted overlap rises.
  const nlohmann::json routing = {
      {"languages", {"de", "en", "nl"}},
      {"per_layer",
       {{{"jsd", {{0, 0.5, 0.4}, {0.5, 0, 0.1}, {0.4, 0.1, 0}}}},
        {{"jsd", {{0, 0.6, 0.3}, {0.6, 0, 0.1}, {0.3, 0.1, 0}}}}}}};
  const std::map<std::string, TypeCounts> types = {
      {"de", {{1, 4}, {2, 4}}}, {"en", {{3, 4}, {4, 4}}}, {"nl", {{2, 4}, {3, 4}, {4, 8}}}};
  const nlohmann::json o = overlap_analysis(types, routing, 1);
  ASSERT_EQ(o["pairs"].size(), 3u);
  EXPECT_EQ(o["pairs"][0]["a"], "de");
  EXPECT_EQ(o["pairs"][0]["b"], "en");
  EXPECT_DOUBLE_EQ(o["pairs"][0]["weighted"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(o["pairs"][0]["last_layer_jsd"].get<double>(), 0.6);  // the last layer's
  EXPECT_DOUBLE_EQ(o["pairs"][1]["weighted"].get<double>(), 0.25);        // de-nl: type 2
  EXPECT_DOUBLE_EQ(o["pairs"][2]["weighted"].get<double>(), 0.75);        // en-nl: 3 and 4
  EXPECT_DOUBLE_EQ(o["pairs"][2]["jaccard"].get<double>(), 2.0 / 3.0);
  // Weighted overlaps (0, .25, .75) against JSDs (.6, .3, .1).
  EXPECT_NEAR(o["pearson_with_last_layer_jsd"]["weighted"].get<double>(),
              pearson({0, 0.25, 0.75}, {0.6, 0.3, 0.1}), 1e-15);
  EXPECT_LT(o["pearson_with_last_layer_jsd"]["weighted"].get<double>(), -0.9);
  testing::expect_error([&] { overlap_analysis({{"de", {}}}, routing, 1); },
                        "no token types for 'en'");
}

}  // namespace
}  // namespace moegrad::eval
