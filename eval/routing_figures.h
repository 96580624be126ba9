// The figures of a routing analysis (eval/routing_analysis.h, with the vocabulary overlap of
// eval/vocab_overlap.h attached as "vocabulary_overlap" the way moegrad analyze does), as SVG
// (eval/svg_plot.h): the curves across layers, the usage and divergence heatmaps, the overlap
// scatter, and any per-layer metric across the checkpoints of continual pre-training.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moegrad::eval {

// File name -> SVG text, for an analysis with at least one layer (none for an empty one):
//   jsd_from_english.svg  divergence of each language from English per layer (the U-shape):
//                         the entropy-normalised JSD on document-aligned text when "aligned" has
//                         any language, else the JSD of the top-k usage; the title says which.
//                         Left out when neither has a language.
//   entropy.svg           usage entropy per layer, one line per language
//   specialization.svg    IG(L;E)/H(L) per layer
//   jsd_mean.svg          mean JSD over language pairs per layer, with and without English
//   usage_layer<L>.svg    language x expert usage shares of the first, middle and last layer
//   jsd_layer<L>.svg      language x language JSD of the last layer
//   overlap_vs_jsd.svg    weighted vocabulary overlap against last-layer JSD, one point per
//                         language pair, least-squares line and Pearson r; only when the
//                         analysis has "vocabulary_overlap"
// Numbers stored as null (NaN in JSON) leave gaps. Throws moegrad::Error naming a missing field.
std::map<std::string, std::string> routing_figures(const nlohmann::json& analysis);

// One line per layer of `metric` over the training steps of a run's routing snapshots (each an
// analysis as above, paired with its step): a per-layer number ("jsd_mean",
// "jsd_mean_without_english", "specialization") as it is, a per-language one ("entropy",
// "jsd_from_english", "consistency") averaged over the languages. A layer a snapshot lacks is a
// gap. Throws naming the metric and step when a layer's entry is neither.
std::string metric_over_checkpoints(
    const std::vector<std::pair<int64_t, nlohmann::json>>& step_and_analysis,
    const std::string& metric);

}  // namespace moegrad::eval
