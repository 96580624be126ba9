// The figures of a hand-made analysis: which files appear, that they name the languages, and
// the fallbacks (no aligned text, no overlap, NaN stored as null); the metric over checkpoints.
#include "eval/routing_analysis.h"
#include "eval/routing_figures.h"
#include "eval/vocab_overlap.h"
#include "tests/testing.h"

namespace moegrad::eval {
namespace {

using json = nlohmann::json;

json language(std::vector<std::vector<int64_t>> counts) {
  return {{"tokens", 10},
          {"counts", counts},
          {"prob_sum", std::vector<std::vector<double>>(3, std::vector<double>(4, 0.0))},
          {"consistency_sum", {1.0, 2.0, 3.0}},
          {"consistency_pairs", {2, 4, 4}}};
}

// 3 layers, 4 experts, top-1; de and fr have English twins of document "a" when aligned.
RoutingStats stats(bool aligned) {
  json j = {{"format", "moegrad.routing_stats"}, {"version", 1}, {"layers", 3}, {"experts", 4},
            {"top_k", 1}};
  j["languages"]["en"] = language({{4, 4, 1, 1}, {5, 3, 1, 1}, {8, 2, 0, 0}});
  j["languages"]["de"] = language({{3, 4, 2, 1}, {1, 4, 4, 1}, {0, 2, 8, 0}});
  j["languages"]["fr"] = language({{4, 3, 2, 1}, {2, 2, 2, 4}, {1, 1, 1, 7}});
  j["sequences"] = json::array();
  if (aligned) {
    const std::vector<std::vector<double>> en = {
        {0.25, 0.25, 0.25, 0.25}, {0.4, 0.2, 0.2, 0.2}, {1, 0, 0, 0}};
    const std::vector<std::vector<double>> other = {
        {0.25, 0.25, 0.25, 0.25}, {0.2, 0.4, 0.2, 0.2}, {0, 0, 1, 0}};
    for (const char* lang : {"en", "de", "fr"})
      j["sequences"].push_back(
          {{"language", lang}, {"document", "a"}, {"mean_prob", lang == std::string("en") ? en : other}});
  }
  return RoutingStats::from_json(j);
}

bool has(const std::string& svg, const std::string& needle) {
  return svg.find(needle) != std::string::npos;
}

TEST(RoutingFigures, EveryFigureOfAnAnalysisWithOverlap) {
  json a = analyze_routing(stats(true), RoutingAnalysisOptions{});
  const std::map<std::string, TypeCounts> types = {
      {"en", {{1, 5}, {2, 5}}}, {"de", {{2, 5}, {3, 5}}}, {"fr", {{1, 2}, {3, 8}}}};
  a["vocabulary_overlap"] = overlap_analysis(types, a, 1);
  const std::map<std::string, std::string> f = routing_figures(a);
  std::vector<std::string> names;
  for (const auto& [name, svg] : f) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"entropy.svg", "jsd_from_english.svg",
                                             "jsd_layer2.svg", "jsd_mean.svg",
                                             "overlap_vs_jsd.svg", "specialization.svg",
                                             "usage_layer0.svg", "usage_layer1.svg",
                                             "usage_layer2.svg"}));
  for (const auto& [name, svg] : f) {
    SCOPED_TRACE(name);
    EXPECT_EQ(svg.rfind("<svg", 0), 0u);
    EXPECT_TRUE(has(svg, "</svg>"));
  }
  for (const char* lang : {">de<", ">fr<", ">en<"}) {
    EXPECT_TRUE(has(f.at("entropy.svg"), lang));
    EXPECT_TRUE(has(f.at("usage_layer1.svg"), lang));
    EXPECT_TRUE(has(f.at("jsd_layer2.svg"), lang));
  }
  EXPECT_TRUE(has(f.at("jsd_from_english.svg"), "document-aligned"));
  EXPECT_TRUE(has(f.at("jsd_from_english.svg"), ">de<"));
  EXPECT_FALSE(has(f.at("jsd_from_english.svg"), ">en<"));  // no line of English from itself
  EXPECT_TRUE(has(f.at("jsd_mean.svg"), ">pairs without en<"));
  EXPECT_TRUE(has(f.at("usage_layer2.svg"), "Expert usage by language, layer 2"));
  EXPECT_TRUE(has(f.at("overlap_vs_jsd.svg"), ">de-en<"));
  EXPECT_TRUE(has(f.at("overlap_vs_jsd.svg"), "Pearson r = "));
}

TEST(RoutingFigures, FallsBackToUsageDivergenceAndToleratesNulls) {
  // Without aligned documents and without overlap; read back from text, with a NaN stored.
  json a = analyze_routing(stats(false), RoutingAnalysisOptions{});
  a["per_layer"][1]["entropy"]["de"] = NAN;
  a = json::parse(a.dump());
  ASSERT_TRUE(a["per_layer"][1]["entropy"]["de"].is_null());
  const std::map<std::string, std::string> f = routing_figures(a);
  EXPECT_FALSE(f.count("overlap_vs_jsd.svg"));
  EXPECT_TRUE(has(f.at("jsd_from_english.svg"), "JSD of top-k expert usage"));
  EXPECT_TRUE(has(f.at("jsd_from_english.svg"), ">fr<"));
  for (const auto& [name, svg] : f) EXPECT_FALSE(has(svg, "nan")) << name;
  EXPECT_TRUE(routing_figures(analyze_routing(RoutingStats(2, 4, 1), {})).empty());
  testing::expect_error([] { routing_figures(json{{"languages", json::array()}}); },
                        "routing_figures: the analysis has no 'per_layer'");
}

TEST(RoutingFigures, MetricOverCheckpointsHasALinePerLayer) {
  const json early = analyze_routing(stats(false), {}), late = analyze_routing(stats(true), {});
  const std::vector<std::pair<int64_t, json>> snaps = {{200, late}, {0, early}};
  const std::string entropy = metric_over_checkpoints(snaps, "entropy");
  for (const char* s : {">layer 0<", ">layer 1<", ">layer 2<", ">training step<",
                        "entropy (mean over languages) per layer over training", ">200<"})
    EXPECT_TRUE(has(entropy, s)) << s;
  const std::string mean = metric_over_checkpoints(snaps, "jsd_mean");
  EXPECT_TRUE(has(mean, ">jsd_mean per layer over training<"));
  testing::expect_error([&] { metric_over_checkpoints(snaps, "layers"); },
                        "metric_over_checkpoints: step 0, per_layer[0] has no 'layers'");
  testing::expect_error([&] { metric_over_checkpoints(snaps, "gaps"); },
                        "'gaps' is neither a number nor a number per language");
}

}  // namespace
}  // namespace moegrad::eval
