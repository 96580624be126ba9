// The analysis of a hand-made statistics document: each number against the metric functions on
// the same rows, the English-free mean, the parent map's effect on shared experts, and the
// pairing of aligned documents.
#include "eval/routing_analysis.h"
#include "eval/routing_metrics.h"
#include "tests/testing.h"

namespace moegrad::eval {
namespace {

using json = nlohmann::json;

json language(std::vector<std::vector<int64_t>> counts, int64_t tokens) {
  return {{"tokens", tokens},
          {"counts", counts},
          {"prob_sum", std::vector<std::vector<double>>(2, std::vector<double>(3, 0.0))},
          {"consistency_sum", {1.0, 3.0}},
          {"consistency_pairs", {2, 4}}};
}

json sequence(const std::string& lang, const std::string& doc,
              std::vector<std::vector<double>> mean) {
  return {{"language", lang}, {"document", doc}, {"mean_prob", mean}};
}

// 2 layers, 3 experts, top-1. Layer 1: expert 0 is English's, expert 2 German's; nl (a child
// of en) uses expert 1 only there, and expert 0 only in layer 0.
RoutingStats stats() {
  json j = {{"format", "moegrad.routing_stats"}, {"version", 1}, {"layers", 2}, {"experts", 3},
            {"top_k", 1}};
  j["languages"]["en"] = language({{4, 4, 2}, {8, 2, 0}}, 10);
  j["languages"]["de"] = language({{3, 4, 3}, {0, 2, 8}}, 10);
  j["languages"]["nl"] = language({{10, 0, 0}, {0, 10, 0}}, 10);
  j["sequences"] = {sequence("en", "a", {{0.5, 0.5, 0}, {1, 0, 0}}),
                    sequence("de", "a", {{0.5, 0.5, 0}, {0, 0, 1}}),
                    sequence("de", "only-de", {{1, 0, 0}, {1, 0, 0}}),
                    sequence("nl", "a", {{0.5, 0.5, 0}, {0.5, 0.5, 0}})};
  return RoutingStats::from_json(j);
}

TEST(RoutingAnalysis, LayerNumbersComeFromTheCounts) {
  const json a = analyze_routing(stats(), RoutingAnalysisOptions{});
  EXPECT_EQ(a["languages"], json({"de", "en", "nl"}));
  const json& l1 = a["per_layer"][1];
  const Distribution en = normalize({8, 2, 0}), de = normalize({0, 2, 8}), nl = {0, 1, 0};
  EXPECT_DOUBLE_EQ(l1["entropy"]["en"].get<double>(), entropy(en));
  EXPECT_DOUBLE_EQ(l1["jsd_from_english"]["de"].get<double>(), jsd(en, de));
  EXPECT_DOUBLE_EQ(l1["jsd"][0][1].get<double>(), jsd(de, en));  // languages in sorted order
  EXPECT_DOUBLE_EQ(l1["jsd_mean_without_english"].get<double>(), jsd(de, nl));
  EXPECT_NEAR(l1["jsd_mean"].get<double>(), (jsd(de, en) + jsd(de, nl) + jsd(en, nl)) / 3, 1e-15);
  EXPECT_DOUBLE_EQ(l1["specialization"].get<double>(),
                   specialization_score({{0, 2, 8}, {8, 2, 0}, {0, 10, 0}}));
  EXPECT_DOUBLE_EQ(l1["consistency"]["de"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(a["per_layer"][0]["consistency"]["en"].get<double>(), 0.5);
  // Gaps: expert 1 is nl's (1.0 - 0.2), expert 0 en's (0.8), expert 2 de's (0.8).
  EXPECT_EQ(l1["language_specific"]["nl"], json({1}));
  EXPECT_EQ(l1["language_specific"]["en"], json({0}));
  EXPECT_EQ(l1["language_specific"]["de"], json({2}));
}

TEST(RoutingAnalysis, SharedExpertsAverageOverParentsAndSkipSpecificOnes) {
  RoutingAnalysisOptions o;
  o.alpha = 0.7;  // layer 0's gaps (0.6, 0, 0.1) are all below: no language-specific expert
  o.shared_k = 1;
  const json a = analyze_routing(stats(), o);
  EXPECT_EQ(a["per_layer"][0]["language_specific"], json::object());
  // Layer 0, mean share over en and de (nl is a child): expert 0 0.35, expert 1 0.4.
  EXPECT_EQ(a["per_layer"][0]["shared"], json({1}));
  // With nl among the languages averaged, expert 0 leads: (0.4 + 0.3 + 1) / 3.
  o.parents.clear();
  EXPECT_EQ(analyze_routing(stats(), o)["per_layer"][0]["shared"], json({0}));
  // Layer 1: every expert is some language's (gaps 0.8), so none is left to share.
  EXPECT_EQ(a["per_layer"][1]["shared"], json::array());
}

TEST(RoutingAnalysis, ParentsAreReadStrictly) {
  using Parents = std::map<std::string, std::string>;
  EXPECT_EQ(parse_parents("uk:ru, ca : es"), (Parents{{"uk", "ru"}, {"ca", "es"}}));
  EXPECT_EQ(parse_parents("none"), Parents{});
  EXPECT_EQ(parse_parents(""), RoutingAnalysisOptions{}.parents);
  for (const char* bad : {"uk", "uk:", ":ru", "uk:ru:pl", "uk:ru,,ca"})
    testing::expect_error([&] { parse_parents(bad); }, "is not child:parent");
  testing::expect_error([&] { parse_parents("uk:uk"); }, "'uk:uk': a language cannot be its own parent");
  testing::expect_error([&] { parse_parents("uk:ru,uk:pl"); }, "'uk' has two parents, ru and pl");
  testing::expect_error([&] { parse_parents(" , "); }, "is not child:parent");
}

TEST(RoutingAnalysis, AlignedDocumentsArePairedWithEnglish) {
  const json a = analyze_routing(stats(), RoutingAnalysisOptions{});
  const json& de = a["aligned"]["de"];
  EXPECT_EQ(de["documents"], 1);  // "only-de" has no English twin
  EXPECT_NEAR(de["jsd"][0].get<double>(), 0.0, 1e-12);
  EXPECT_NEAR(de["jsd"][1].get<double>(), std::log(2.0), 1e-9);
  EXPECT_NEAR(de["normalized_jsd"][1].get<double>(), std::log(2.0) / std::log(3.0), 1e-9);
  EXPECT_FALSE(a["aligned"].contains("en"));
  RoutingAnalysisOptions o;
  o.english = "fr";  // no such language: nothing to pair with, and no divergence from it
  const json none = analyze_routing(stats(), o);
  EXPECT_EQ(none["aligned"], json::object());
  EXPECT_EQ(none["per_layer"][1]["jsd_from_english"], json::object());
}

}  // namespace
}  // namespace moegrad::eval
