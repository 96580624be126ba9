#include "eval/routing_figures.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "eval/svg_plot.h"

namespace moegrad::eval {
namespace {

using json = nlohmann::json;

const json& field(const json& j, const std::string& key, const std::string& where) {
  MOEGRAD_CHECK(j.is_object() && j.contains(key), where, " has no '", key, "'");
  return j[key];
}

// null is how a NaN comes back from a JSON file.
double number(const json& v) { return v.is_number() ? v.get<double>() : NAN; }

// values[layer] of a per-layer array, NaN past its end.
double at_layer(const json& values, size_t layer) {
  return values.is_array() && layer < values.size() ? number(values[layer]) : NAN;
}

std::string r_text(const json& r) {
  const double v = number(r);
  if (!std::isfinite(v)) return "undefined";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

struct Analysis {
  const json& a;
  std::vector<std::string> languages;
  std::string english;
  const json& per_layer;
  std::vector<double> layers;  // the x values: layer numbers

  explicit Analysis(const json& analysis)
      : a(analysis),
        english(analysis.is_object() ? analysis.value("english", "en") : "en"),
        per_layer(field(analysis, "per_layer", "routing_figures: the analysis")) {
    for (const json& l : field(a, "languages", "routing_figures: the analysis"))
      languages.push_back(l.get<std::string>());
    for (size_t i = 0; i < per_layer.size(); ++i)
      layers.push_back(number(field(per_layer[i], "layer", where(i))));
  }
  std::string where(size_t layer) const {
    return "routing_figures: per_layer[" + std::to_string(layer) + "]";
  }
  const json& get(size_t layer, const std::string& key) const {
    return field(per_layer[layer], key, where(layer));
  }
  // One line per language of a per-language number of each layer.
  std::vector<LineSeries> per_language(const std::string& key, bool skip_english) const {
    std::vector<LineSeries> out;
    for (const std::string& lang : languages) {
      if (skip_english && lang == english) continue;
      LineSeries s{lang, {}};
      for (size_t i = 0; i < per_layer.size(); ++i) s.y.push_back(number(get(i, key).value(lang, json())));
      out.push_back(std::move(s));
    }
    return out;
  }
  LineSeries per_layer_number(const std::string& name, const std::string& key) const {
    LineSeries s{name, {}};
    for (size_t i = 0; i < per_layer.size(); ++i) s.y.push_back(number(get(i, key)));
    return s;
  }
  std::string layer_name(size_t i) const { return format_number(layers[i], 6); }
};

std::string jsd_from_english(const Analysis& an) {
  LinePlot p;
  p.x = an.layers;
  p.x_label = "layer";
  p.integer_x = true;
  const json aligned = an.a.value("aligned", json::object());
  if (aligned.is_object() && !aligned.empty()) {
    p.title = "Divergence from " + an.english +
              " per layer: entropy-normalised JSD on document-aligned text";
    p.y_label = "normalised JSD";
    for (const auto& [lang, entry] : aligned.items()) {
      LineSeries s{lang, {}};
      const json& values = field(entry, "normalized_jsd", "routing_figures: aligned." + lang);
      for (size_t i = 0; i < an.layers.size(); ++i) s.y.push_back(at_layer(values, i));
      p.series.push_back(std::move(s));
    }
  } else {
    p.title = "Divergence from " + an.english + " per layer: JSD of top-k expert usage";
    p.y_label = "JSD (nats)";
    for (LineSeries& s : an.per_language("jsd_from_english", true))
      if (std::any_of(s.y.begin(), s.y.end(), [](double v) { return !std::isnan(v); }))
        p.series.push_back(std::move(s));
  }
  return p.series.empty() ? "" : to_svg(p);
}

Heatmap usage_heatmap(const Analysis& an, size_t layer) {
  Heatmap h;
  h.title = "Expert usage by language, layer " + an.layer_name(layer);
  h.x_label = "expert";
  h.y_label = "language";
  h.value_label = "share of top-k selections";
  const json& usage = an.get(layer, "usage");
  size_t experts = 0;
  for (const std::string& lang : an.languages) {
    const json& row = field(usage, lang, an.where(layer) + ".usage");
    experts = std::max(experts, row.size());
  }
  for (size_t e = 0; e < experts; ++e) h.column_labels.push_back(std::to_string(e));
  for (const std::string& lang : an.languages) {
    h.row_labels.push_back(lang);
    std::vector<double> row;
    for (size_t e = 0; e < experts; ++e) row.push_back(at_layer(usage[lang], e));
    h.values.push_back(std::move(row));
  }
  return h;
}

Heatmap jsd_heatmap(const Analysis& an, size_t layer) {
  Heatmap h;
  h.title = "JSD between languages' expert usage, layer " + an.layer_name(layer);
  h.value_label = "JSD (nats)";
  h.row_labels = h.column_labels = an.languages;
  const json& matrix = an.get(layer, "jsd");
  for (size_t i = 0; i < an.languages.size(); ++i) {
    std::vector<double> row;
    for (size_t j = 0; j < an.languages.size(); ++j)
      row.push_back(i < matrix.size() ? at_layer(matrix[i], j) : NAN);
    h.values.push_back(std::move(row));
  }
  return h;
}

std::string overlap_scatter(const Analysis& an) {
  const json& o = an.a["vocabulary_overlap"];
  ScatterPlot p;
  p.title = "Vocabulary overlap against last-layer JSD, per language pair";
  p.x_label = "weighted vocabulary overlap (share of running text in common)";
  p.y_label = "JSD (nats), layer " + an.layer_name(an.layers.size() - 1);
  p.fit_line = true;
  for (const json& pair : field(o, "pairs", "routing_figures: vocabulary_overlap"))
    p.points.push_back({number(pair.value("weighted", json())),
                        number(pair.value("last_layer_jsd", json())),
                        pair.value("a", "?") + "-" + pair.value("b", "?")});
  const json r = o.value("pearson_with_last_layer_jsd", json::object());
  p.caption = "Pearson r = " + r_text(r.value("weighted", json())) +
              " (weighted overlap); Jaccard overlap: r = " + r_text(r.value("jaccard", json()));
  return to_svg(p);
}

}  // namespace

std::map<std::string, std::string> routing_figures(const nlohmann::json& analysis) {
  const Analysis an(analysis);
  std::map<std::string, std::string> out;
  const size_t n = an.layers.size();
  if (n == 0) return out;

  if (std::string svg = jsd_from_english(an); !svg.empty()) out["jsd_from_english.svg"] = svg;

  LinePlot entropy{"Expert usage entropy per layer", "layer", "entropy (nats)", an.layers,
                   an.per_language("entropy", false), true};
  out["entropy.svg"] = to_svg(entropy);

  LinePlot spec{"Language specialisation of routing per layer", "layer", "IG(L;E) / H(L)",
                an.layers, {an.per_layer_number("specialisation", "specialization")}, true};
  out["specialization.svg"] = to_svg(spec);

  LinePlot mean{"Mean JSD between languages' expert usage per layer",
                "layer",
                "JSD (nats)",
                an.layers,
                {an.per_layer_number("all pairs", "jsd_mean"),
                 an.per_layer_number("pairs without " + an.english, "jsd_mean_without_english")},
                true};
  out["jsd_mean.svg"] = to_svg(mean);

  for (size_t i : std::set<size_t>{0, n / 2, n - 1})
    out["usage_layer" + an.layer_name(i) + ".svg"] = to_svg(usage_heatmap(an, i));
  out["jsd_layer" + an.layer_name(n - 1) + ".svg"] = to_svg(jsd_heatmap(an, n - 1));

  if (analysis.contains("vocabulary_overlap")) out["overlap_vs_jsd.svg"] = overlap_scatter(an);
  return out;
}

std::string metric_over_checkpoints(
    const std::vector<std::pair<int64_t, nlohmann::json>>& step_and_analysis,
    const std::string& metric) {
  std::vector<const std::pair<int64_t, json>*> snapshots;
  for (const auto& s : step_and_analysis) snapshots.push_back(&s);
  std::stable_sort(snapshots.begin(), snapshots.end(),
                   [](auto* a, auto* b) { return a->first < b->first; });
  size_t layers = 0;
  for (auto* s : snapshots)
    layers = std::max(layers, field(s->second, "per_layer",
                                    "metric_over_checkpoints: the analysis of step " +
                                        std::to_string(s->first))
                                  .size());
  LinePlot p;
  p.x_label = "training step";
  p.y_label = metric;
  p.integer_x = true;
  for (auto* s : snapshots) p.x.push_back(double(s->first));
  bool averaged = false;
  for (size_t l = 0; l < layers; ++l) {
    LineSeries series{"layer " + std::to_string(l), {}};
    for (auto* s : snapshots) {
      const json& per_layer = s->second["per_layer"];
      if (l >= per_layer.size()) {
        series.y.push_back(NAN);
        continue;
      }
      const std::string where = "metric_over_checkpoints: step " + std::to_string(s->first) +
                                ", per_layer[" + std::to_string(l) + "]";
      const json& v = field(per_layer[l], metric, where);
      if (v.is_object()) {
        averaged = true;
        double sum = 0;
        int64_t count = 0;
        for (const auto& [lang, x] : v.items())
          if (x.is_number()) sum += x.get<double>(), ++count;
        series.y.push_back(count ? sum / double(count) : NAN);
      } else {
        MOEGRAD_CHECK(v.is_number() || v.is_null(), where, ": '", metric,
                      "' is neither a number nor a number per language");
        series.y.push_back(number(v));
      }
    }
    p.series.push_back(std::move(series));
  }
  p.title = metric + (averaged ? " (mean over languages)" : "") + " per layer over training";
  return to_svg(p);
}

}  // namespace moegrad::eval
