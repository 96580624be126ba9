#include "train/adapt.h"

#include <algorithm>
#include <numeric>
#include <set>

#include "core/error.h"
#include "core/io/json_reader.h"
#include "core/random.h"
#include "eval/routing_analysis.h"
#include "train/config.h"

namespace moegrad::train {
namespace {

using json = nlohmann::json;

// The analysis's layer entry for model layer `layer`.
JsonReader layer_entry(const JsonReader& analysis, int64_t layer) {
  for (const JsonReader& l : analysis["per_layer"].elements())
    if (l["layer"].integer() == layer) return l;
  analysis["per_layer"].fail("has no entry for layer " + std::to_string(layer));
}

std::vector<int64_t> specific(const JsonReader& layer, const std::string& language) {
  const JsonReader ls = layer["language_specific"];
  ls.expect(ls.json().is_object(), "an object");
  return ls.has(language) ? ls[language].integers() : std::vector<int64_t>{};
}

// The language whose specific experts the target uses: itself when the analysis gives it any in
// the adapted layers, else its parent.
std::string expert_source(const AdaptSection& a, const JsonReader& analysis,
                          const std::vector<int64_t>& layers) {
  for (int64_t l : layers)
    if (!specific(layer_entry(analysis, l), a.language).empty()) return a.language;
  const auto parents = eval::parse_parents(a.parents);  // checked by load_config
  const auto it = parents.find(a.language);
  MOEGRAD_CHECK(it != parents.end(), "adapt.language: '", a.language,
                "' has no language-specific experts in ", a.routing,
                " and no parent in adapt.parents to borrow them from");
  return it->second;
}

std::string join(const std::vector<int64_t>& xs) {
  std::string s;
  for (int64_t x : xs) {
    if (!s.empty()) s += ',';
    s += std::to_string(x);
  }
  return s;
}

}  // namespace

Adaptation resolve_adaptation(const AdaptSection& a, int64_t num_layers, int64_t num_experts,
                              const json& routing) {
  static const std::set<std::string> kMethods = {"seft", "ssft", "aeft", "top_n", "random",
                                                 "final_layers", "full"};
  MOEGRAD_CHECK(kMethods.count(a.method), "adapt.method: '", a.method,
                "' is not one of seft, ssft, aeft, top_n, random, final_layers, full, none");
  MOEGRAD_CHECK(a.layers >= 1 && a.layers <= num_layers, "adapt.layers: ", a.layers,
                " is not between 1 and the model's ", num_layers, " layers");
  Adaptation out;
  if (a.method == "full") {
    out.rules = {"train *"};
    return out;
  }
  std::vector<int64_t> layers(size_t(a.layers));
  std::iota(layers.begin(), layers.end(), num_layers - a.layers);
  if (a.method == "final_layers") {
    for (int64_t l : layers) out.rules.push_back("train model.layers." + std::to_string(l) + ".*");
    return out;
  }
  const bool from_analysis = a.method != "aeft";
  const JsonReader analysis(routing, "adapt.routing: " + a.routing);
  if (from_analysis) {
    MOEGRAD_CHECK(!a.language.empty(), "adapt.language: ", a.method, " needs a target language");
    const int64_t analysed = analysis["experts"].integer();
    if (analysed != num_experts)
      analysis["experts"].fail(detail::concat("is ", analysed, ", but the model has ", num_experts,
                                              " experts per layer"));
  }
  std::string source = a.language;
  if (a.method == "seft" || a.method == "ssft") source = expert_source(a, analysis, layers);
  if (a.method == "random") {
    std::vector<std::string> others;
    for (const std::string& l : analysis["languages"].strings())
      if (l != a.language) others.push_back(l);
    if (others.empty()) analysis["languages"].fail("holds no language other than " + a.language);
    Generator gen(a.seed);
    source = others[size_t(randint(0, int64_t(others.size()), {1}, gen).item())];
  }
  out.source_language = from_analysis ? source : "";
  for (int64_t l : layers) {
    std::vector<int64_t> experts;
    if (a.method == "aeft") {
      experts.resize(size_t(num_experts));
      std::iota(experts.begin(), experts.end(), 0);
    } else if (a.method == "top_n") {
      // The experts where the target leads by the widest gap, as the paper's top-20 baseline.
      std::vector<std::pair<double, int64_t>> by_gap;
      for (const JsonReader& g : layer_entry(analysis, l)["gaps"].elements())
        if (g["language"].string() == a.language)
          by_gap.push_back({-g["gap"].number(), g["expert"].integer()});
      std::sort(by_gap.begin(), by_gap.end());
      for (size_t i = 0; i < by_gap.size() && int64_t(i) < a.top_n; ++i)
        experts.push_back(by_gap[i].second);
    } else {
      experts = specific(layer_entry(analysis, l), source);
      if (a.method == "ssft") {
        const std::vector<int64_t> shared = layer_entry(analysis, l)["shared"].integers();
        for (size_t i = 0; i < shared.size() && int64_t(i) < a.shared_k; ++i)
          if (std::find(experts.begin(), experts.end(), shared[i]) == experts.end())
            experts.push_back(shared[i]);
      }
    }
    std::sort(experts.begin(), experts.end());
    for (int64_t e : experts)
      MOEGRAD_CHECK(e >= 0 && e < num_experts, "adapt.routing: expert ", e, " of layer ", l,
                    " is out of range for ", num_experts, " experts");
    out.rules.push_back("train model.layers." + std::to_string(l) + ".mlp.gate.weight");
    if (!experts.empty()) out.rules.push_back("experts " + std::to_string(l) + ":" + join(experts));
    out.experts[l] = experts;
  }
  return out;
}

}  // namespace moegrad::train
