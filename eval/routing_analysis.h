// The analyses of shared/spec/paper-recipe.md over collected routing statistics: per layer the
// usage entropy of each language, JSD between every pair of languages (and its means with and
// without English), the specialisation score, routing consistency, language-specific experts by
// activation gap and shared experts; on document-aligned sequences, the JSD and
// entropy-normalised JSD of each language from English per layer (the U-shape).
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/routing_stats.h"

namespace moegrad::eval {

struct RoutingAnalysisOptions {
  std::string english = "en";  // the reference language of divergences
  double alpha = 0.01;         // gap threshold of language-specific experts
  int64_t shared_k = 5;        // shared experts per layer
  // Low-resource language -> the related high-resource language whose experts it borrows; the
  // shared experts average over the languages that are nobody's child here.
  std::map<std::string, std::string> parents = {{"ca", "es"}, {"et", "fi"}, {"mr", "hi"},
                                                {"sk", "cs"}, {"uk", "ru"}, {"ur", "ar"},
                                                {"nl", "en"}};
};

// Child:parent pairs as a user writes them ("uk:ru, ca:es"): "none" gives no pairs, "" the
// papers' (RoutingAnalysisOptions::parents). Throws moegrad::Error saying what is wrong with a
// pair (not child:parent, a child that is its own parent or has two parents); the caller names
// the flag or key.
std::map<std::string, std::string> parse_parents(const std::string& text);

// {"languages": [names, sorted], "layers", "experts", "top_k",
//  "per_layer": [{"layer", "usage": {lang: [q_e]}, "entropy": {lang: H}, "jsd": [[...]] (in
//    "languages" order), "jsd_mean", "jsd_mean_without_english", "jsd_from_english": {lang},
//    "specialization", "consistency": {lang}, "gaps": [{"expert", "language", "gap"}],
//    "language_specific": {lang: [experts]}, "shared": [experts]}],
//  "aligned": {lang: {"documents": n, "jsd": [per layer], "normalized_jsd": [per layer]}}}
// Counts-based numbers use the top-k selection counts; aligned ones the sequences' mean router
// probabilities, paired by document name with the English sequence of the same document.
nlohmann::json analyze_routing(const RoutingStats& stats, const RoutingAnalysisOptions& options);

}  // namespace moegrad::eval
