#include "eval/routing_analysis.h"

#include <algorithm>

#include "core/error.h"
#include "core/split_list.h"
#include "eval/routing_metrics.h"

namespace moegrad::eval {
namespace {

using json = nlohmann::json;

json layer_analysis(const RoutingStats& stats, const std::vector<std::string>& names,
                    int64_t layer, const RoutingAnalysisOptions& o) {
  std::vector<std::vector<double>> counts;
  for (const std::string& n : names) {
    const auto& row = stats.languages().at(n).counts[size_t(layer)];
    counts.emplace_back(row.begin(), row.end());
  }
  const std::vector<Distribution> usage = activation_shares(counts);
  json out = {{"layer", layer}};
  json usage_j, entropy_j, consistency_j;
  for (size_t i = 0; i < names.size(); ++i) {
    const LanguageRouting& l = stats.languages().at(names[i]);
    usage_j[names[i]] = usage[i];
    entropy_j[names[i]] = entropy(usage[i]);
    const int64_t pairs = l.consistency_pairs[size_t(layer)];
    consistency_j[names[i]] = pairs ? l.consistency_sum[size_t(layer)] / double(pairs) : 0.0;
  }
  out["usage"] = usage_j;
  out["entropy"] = entropy_j;
  out["consistency"] = consistency_j;

  json matrix = json::array(), from_english = json::object();
  double sum = 0, sum_without = 0;
  int64_t pairs = 0, pairs_without = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    json row = json::array();
    for (size_t j = 0; j < names.size(); ++j) {
      const double d = jsd(usage[i], usage[j]);
      row.push_back(d);
      if (j <= i) continue;
      sum += d;
      ++pairs;
      if (names[i] != o.english && names[j] != o.english) {
        sum_without += d;
        ++pairs_without;
      }
    }
    matrix.push_back(row);
  }
  const auto en = std::find(names.begin(), names.end(), o.english);
  if (en != names.end())
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] != o.english) from_english[names[i]] = matrix[size_t(en - names.begin())][i];
  out["jsd"] = matrix;
  out["jsd_mean"] = pairs ? sum / double(pairs) : 0.0;
  out["jsd_mean_without_english"] = pairs_without ? sum_without / double(pairs_without) : 0.0;
  out["jsd_from_english"] = from_english;
  out["specialization"] = specialization_score(counts);

  json gaps = json::array();
  for (const ExpertGap& g : expert_gaps(usage))
    gaps.push_back(
        {{"expert", g.expert}, {"language", names[size_t(g.top_language)]}, {"gap", g.gap}});
  out["gaps"] = gaps;
  json specific = json::object();
  std::vector<int64_t> chosen;
  for (const auto& [lang, experts] : language_specific_experts(usage, o.alpha)) {
    specific[names[size_t(lang)]] = experts;
    chosen.insert(chosen.end(), experts.begin(), experts.end());
  }
  out["language_specific"] = specific;
  std::vector<int64_t> high;
  for (size_t i = 0; i < names.size(); ++i)
    if (!o.parents.count(names[i])) high.push_back(int64_t(i));
  out["shared"] = high.empty() ? std::vector<int64_t>{}
                               : shared_experts(usage, high, o.shared_k, chosen);
  return out;
}

// Each language's sequences paired with the English sequence of the same document (the k-th
// window of a document with the k-th): JSD and entropy-normalised JSD per layer, averaged.
json aligned_analysis(const RoutingStats& stats, const RoutingAnalysisOptions& o) {
  std::map<std::string, std::map<std::string, std::vector<size_t>>> by_doc;  // lang, doc -> seqs
  for (size_t i = 0; i < stats.sequences().size(); ++i) {
    const SequenceRouting& s = stats.sequences()[i];
    if (!s.document.empty()) by_doc[s.language][s.document].push_back(i);
  }
  json out = json::object();
  if (!by_doc.count(o.english)) return out;
  const auto& english = by_doc.at(o.english);
  const size_t layers = size_t(stats.layers());
  for (const auto& [lang, docs] : by_doc) {
    if (lang == o.english) continue;
    std::vector<double> d(layers, 0.0), nd(layers, 0.0);
    int64_t n = 0;
    for (const auto& [doc, seqs] : docs) {
      const auto it = english.find(doc);
      if (it == english.end()) continue;
      for (size_t k = 0; k < std::min(seqs.size(), it->second.size()); ++k) {
        const SequenceRouting& x = stats.sequences()[seqs[k]];
        const SequenceRouting& e = stats.sequences()[it->second[k]];
        for (size_t l = 0; l < layers; ++l) {
          d[l] += jsd(e.mean_prob[l], x.mean_prob[l]);
          nd[l] += normalized_jsd(e.mean_prob[l], x.mean_prob[l]);
        }
        ++n;
      }
    }
    if (n == 0) continue;
    for (size_t l = 0; l < layers; ++l) {
      d[l] /= double(n);
      nd[l] /= double(n);
    }
    out[lang] = {{"documents", n}, {"jsd", d}, {"normalized_jsd", nd}};
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> parse_parents(const std::string& text) {
  if (text.empty()) return RoutingAnalysisOptions{}.parents;
  std::map<std::string, std::string> out;
  if (text == "none") return out;
  const char* not_a_pair = "' is not child:parent (e.g. uk:ru; 'none' for no pairs)";
  const std::vector<std::string> pairs = split_list(text, ',');
  MOEGRAD_CHECK(!pairs.empty(), "'", text, not_a_pair);
  for (const std::string& pair : pairs) {
    const std::vector<std::string> p = split_list(pair, ':');
    MOEGRAD_CHECK(p.size() == 2, "'", pair, not_a_pair);
    const std::string &child = p[0], &parent = p[1];
    MOEGRAD_CHECK(child != parent, "'", pair, "': a language cannot be its own parent");
    const auto [it, added] = out.emplace(child, parent);
    MOEGRAD_CHECK(added, "'", child, "' has two parents, ", it->second, " and ", parent);
  }
  return out;
}

nlohmann::json analyze_routing(const RoutingStats& stats, const RoutingAnalysisOptions& options) {
  std::vector<std::string> names;
  for (const auto& [name, l] : stats.languages()) names.push_back(name);
  json out = {{"languages", names},
              {"layers", stats.layers()},
              {"experts", stats.experts()},
              {"top_k", stats.top_k()},
              {"english", options.english},
              {"alpha", options.alpha},
              {"shared_k", options.shared_k}};
  json tokens = json::object();
  for (const auto& [name, l] : stats.languages()) tokens[name] = l.tokens;
  out["tokens"] = tokens;
  json per_layer = json::array();
  if (!names.empty())
    for (int64_t layer = 0; layer < stats.layers(); ++layer)
      per_layer.push_back(layer_analysis(stats, names, layer, options));
  out["per_layer"] = per_layer;
  out["aligned"] = aligned_analysis(stats, options);
  return out;
}

}  // namespace moegrad::eval
