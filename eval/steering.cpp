#include "eval/steering.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/io/json_reader.h"
#include "core/ops/binary.h"
#include "core/ops/compare.h"
#include "core/ops/reduce.h"
#include "core/ops/softmax.h"
#include "core/ops/unary.h"

namespace moegrad::eval {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

[[noreturn]] void fail(const std::string& source, const std::string& field,
                       const std::string& problem) {
  throw Error(source + ": " + field + ": " + problem);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

const std::vector<std::string> kFields = {"mode",       "delta",   "lambda",      "layers",
                                          "layer_list", "promote", "promote_all", "demote",
                                          "demote_all", "weights", "provenance"};

// A non-negative integer (a layer or an expert), else an error naming the field.
int64_t index_value(const json& v, const std::string& source, const std::string& field,
                    const char* what) {
  const std::optional<int64_t> index = json_int64(v);
  if (!index) fail(source, field, std::string(what) + " " + v.dump() + " is not an integer");
  const int64_t i = *index;
  if (i < 0) fail(source, field, std::string(what) + " " + std::to_string(i) + " is negative");
  return i;
}

// An object key that names a layer or an expert ("12").
int64_t index_key(const std::string& key, const std::string& source, const std::string& field,
                  const char* what) {
  int64_t i = -1;
  const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), i);
  if (key.empty() || ec != std::errc() || end != key.data() + key.size() || i < 0)
    fail(source, field, std::string(what) + " '" + key + "' is not a non-negative integer");
  return i;
}

double non_negative(const json& j, const char* key, double fallback, const std::string& source) {
  if (!j.contains(key)) return fallback;
  const json& v = j.at(key);
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
    fail(source, key, "must be a non-negative number, got " + v.dump());
  return v.get<double>();
}

std::string layer_names(const std::map<int64_t, LayerSteering>& layers) {
  std::vector<std::string> names;
  for (const auto& [l, s] : layers) names.push_back(std::to_string(l));
  return join(names);
}

std::vector<int64_t> steered_layers(const json& j, const std::string& source,
                                    const SteeringLimits& limits) {
  if (j.contains("layers") == j.contains("layer_list"))
    fail(source, "layers",
         "give exactly one of 'layers' ([first, last]) and 'layer_list' ([l, ...])");
  std::vector<int64_t> out;
  if (j.contains("layers")) {
    const json& v = j.at("layers");
    if (!v.is_array() || v.size() != 2)
      fail(source, "layers", "must be [first, last] (an inclusive range), got " + v.dump());
    const int64_t first = index_value(v[0], source, "layers", "layer");
    const int64_t last = index_value(v[1], source, "layers", "layer");
    if (first > last)
      fail(source, "layers",
           "first layer " + std::to_string(first) + " is after the last " + std::to_string(last));
    for (int64_t l = first; l <= last; ++l) out.push_back(l);
  } else {
    const json& v = j.at("layer_list");
    if (!v.is_array() || v.empty())
      fail(source, "layer_list", "must be a non-empty list of layers, got " + v.dump());
    for (const json& l : v) out.push_back(index_value(l, source, "layer_list", "layer"));
    std::sort(out.begin(), out.end());
    const auto dup = std::adjacent_find(out.begin(), out.end());
    if (dup != out.end())
      fail(source, "layer_list", "layer " + std::to_string(*dup) + " is listed twice");
  }
  const char* field = j.contains("layers") ? "layers" : "layer_list";
  if (limits.layers > 0 && out.back() >= limits.layers)
    fail(source, field,
         "layer " + std::to_string(out.back()) + " out of range for a model of " +
             std::to_string(limits.layers) + " layers");
  return out;
}

std::vector<int64_t> expert_list(const json& v, const std::string& source, const std::string& field,
                                 const SteeringLimits& limits) {
  if (!v.is_array()) fail(source, field, "must be a list of experts, got " + v.dump());
  std::vector<int64_t> out;
  for (const json& e : v) {
    const int64_t x = index_value(e, source, field, "expert");
    if (limits.experts > 0 && x >= limits.experts)
      fail(source, field,
           "expert " + std::to_string(x) + " out of range for a model of " +
               std::to_string(limits.experts) + " experts");
    out.push_back(x);
  }
  return out;
}

// "promote"/"demote" ({"<layer>": [e]}) and "promote_all"/"demote_all" ([e]) into each layer.
void read_experts(const json& j, const std::string& name, std::map<int64_t, LayerSteering>& layers,
                  const std::string& source, const SteeringLimits& limits) {
  auto add = [&](LayerSteering& s, const std::vector<int64_t>& experts) {
    std::vector<int64_t>& set = name == "promote" ? s.promote : s.demote;
    set.insert(set.end(), experts.begin(), experts.end());
    std::sort(set.begin(), set.end());
    set.erase(std::unique(set.begin(), set.end()), set.end());
  };
  const std::string all = name + "_all";
  if (j.contains(all)) {
    const std::vector<int64_t> experts = expert_list(j.at(all), source, all, limits);
    for (auto& [l, s] : layers) add(s, experts);
  }
  if (!j.contains(name)) return;
  const json& per_layer = j.at(name);
  if (!per_layer.is_object())
    fail(source, name, "must be an object {\"<layer>\": [experts]}, got " + per_layer.dump());
  for (const auto& [key, v] : per_layer.items()) {
    const std::string field = name + "." + key;
    const int64_t l = index_key(key, source, field, "layer");
    if (!layers.count(l))
      fail(source, field,
           "layer " + key + " is not among the steered layers (" + layer_names(layers) + ")");
    add(layers.at(l), expert_list(v, source, field, limits));
  }
}

void read_weights(const json& j, std::map<int64_t, LayerSteering>& layers,
                  const std::string& source) {
  if (!j.contains("weights")) return;
  const json& w = j.at("weights");
  if (!w.is_object())
    fail(source, "weights", "must be an object {\"<layer>\": {\"<expert>\": w}}, got " + w.dump());
  for (const auto& [lkey, experts] : w.items()) {
    const std::string lfield = "weights." + lkey;
    const int64_t l = index_key(lkey, source, lfield, "layer");
    if (!layers.count(l))
      fail(source, lfield,
           "layer " + lkey + " is not among the steered layers (" + layer_names(layers) + ")");
    if (!experts.is_object())
      fail(source, lfield, "must be an object {\"<expert>\": w}, got " + experts.dump());
    LayerSteering& s = layers.at(l);
    for (const auto& [ekey, v] : experts.items()) {
      const std::string field = lfield + "." + ekey;
      const int64_t e = index_key(ekey, source, field, "expert");
      if (!std::binary_search(s.promote.begin(), s.promote.end(), e) &&
          !std::binary_search(s.demote.begin(), s.demote.end(), e))
        fail(source, field, "expert " + ekey + " is neither promoted nor demoted in layer " + lkey);
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
        fail(source, field, "must be a non-negative number, got " + v.dump());
      s.weights[e] = v.get<double>();
    }
  }
}

// [E] bool, true at `experts`.
Tensor expert_mask(const std::vector<int64_t>& experts, int64_t num_experts, Device device) {
  std::vector<double> m(size_t(num_experts), 0.0);
  for (int64_t e : experts) m[size_t(e)] = 1.0;
  return from_vector(m, {num_experts}).to(DType::Bool).to(device);
}

// {layer: [experts]} of one side, or the list when every layer has the same one.
void write_experts(ordered_json& out, const std::string& name,
                   const std::map<int64_t, LayerSteering>& layers) {
  auto of = [&](const LayerSteering& s) -> const std::vector<int64_t>& {
    return name == "promote" ? s.promote : s.demote;
  };
  const std::vector<int64_t>& first = of(layers.begin()->second);
  const bool same = std::all_of(layers.begin(), layers.end(),
                                [&](const auto& l) { return of(l.second) == first; });
  if (same) {
    if (!first.empty()) out[name + "_all"] = first;
    return;
  }
  ordered_json per_layer = ordered_json::object();
  for (const auto& [l, s] : layers)
    if (!of(s).empty()) per_layer[std::to_string(l)] = of(s);
  out[name] = per_layer;
}

void check_threshold(const ExpertThreshold& t) {
  MOEGRAD_CHECK(std::isfinite(t.tau) && t.tau >= 0 && std::isfinite(t.num_std) && t.num_std >= 0,
                "expert threshold: tau and num_std must be non-negative, got ", t.tau, " and ",
                t.num_std);
}

// A count of the analysis (layers, experts, top_k): at least 1.
int64_t analysis_count(const JsonReader& analysis, const char* key) {
  return analysis[key].integer(1);
}

// [layer][expert] activation frequencies of `language`: its usage times top_k.
std::vector<std::vector<double>> frequencies(const JsonReader& analysis,
                                             const std::string& language) {
  const int64_t k = analysis_count(analysis, "top_k");
  const int64_t experts = analysis_count(analysis, "experts");
  std::vector<std::vector<double>> out;
  for (const JsonReader& layer : analysis["per_layer"].elements()) {
    const JsonReader usage = layer["usage"];
    usage.expect(usage.json().is_object(), "an object");
    if (!usage.has(language)) {
      std::vector<std::string> have;
      for (const auto& [name, u] : usage.json().items()) have.push_back(name);
      usage.fail("has no language '" + language + "' (it has: " + join(have) + ")");
    }
    std::vector<double> f = usage[language].numbers();
    if (int64_t(f.size()) != experts)
      usage[language].fail(detail::concat("has ", f.size(), " experts, not ", experts));
    for (double& x : f) x *= double(k);
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

const char* steering_mode_name(SteeringMode mode) {
  return mode == SteeringMode::Hard ? "hard" : "soft";
}

ordered_json Steering::to_json() const {
  MOEGRAD_CHECK(!layers.empty(), "Steering::to_json: no steered layers");
  ordered_json out = {{"mode", steering_mode_name(mode)}, {"delta", delta}, {"lambda", lambda}};
  const int64_t first = layers.begin()->first, last = layers.rbegin()->first;
  if (last - first + 1 == int64_t(layers.size())) {
    out["layers"] = {first, last};
  } else {
    std::vector<int64_t> list;
    for (const auto& [l, s] : layers) list.push_back(l);
    out["layer_list"] = list;
  }
  write_experts(out, "promote", layers);
  write_experts(out, "demote", layers);
  ordered_json weights = ordered_json::object();
  for (const auto& [l, s] : layers)
    for (const auto& [e, w] : s.weights) weights[std::to_string(l)][std::to_string(e)] = w;
  if (!weights.empty()) out["weights"] = weights;
  if (!provenance.is_null()) out["provenance"] = ordered_json::parse(provenance.dump());
  return out;
}

Steering parse_steering(const json& j, const std::string& source, const SteeringLimits& limits) {
  if (!j.is_object()) fail(source, "(top level)", "must be a JSON object, got " + j.dump());
  for (const auto& [key, v] : j.items())
    if (std::find(kFields.begin(), kFields.end(), key) == kFields.end())
      fail(source, key, "unknown field (the fields: " + join(kFields) + ")");
  Steering s;
  if (j.contains("mode")) {
    const json& m = j.at("mode");
    if (m == "hard")
      s.mode = SteeringMode::Hard;
    else if (m == "soft")
      s.mode = SteeringMode::Soft;
    else
      fail(source, "mode", "unknown mode " + m.dump() + " (hard or soft)");
  }
  s.delta = non_negative(j, "delta", s.delta, source);
  s.lambda = non_negative(j, "lambda", s.lambda, source);
  for (int64_t l : steered_layers(j, source, limits)) s.layers[l];
  read_experts(j, "promote", s.layers, source, limits);
  read_experts(j, "demote", s.layers, source, limits);
  for (const auto& [l, ls] : s.layers)
    for (int64_t e : ls.promote)
      if (std::binary_search(ls.demote.begin(), ls.demote.end(), e))
        fail(source, "demote",
             "expert " + std::to_string(e) + " is both promoted and demoted in layer " +
                 std::to_string(l));
  read_weights(j, s.layers, source);
  if (j.contains("provenance")) s.provenance = j.at("provenance");
  return s;
}

Steering read_steering(const std::string& path, const SteeringLimits& limits) {
  const std::string source = "steering file " + path;
  std::ifstream in(path);
  MOEGRAD_CHECK(in, source, ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::parse_error& e) {
    throw Error(source + ": malformed JSON: " + e.what());
  }
  return parse_steering(j, source, limits);
}

RouterIntervention steering_intervention(const Steering& steering) {
  return [s = steering](int64_t layer, const Variable& logits) -> Variable {
    const auto it = s.layers.find(layer);
    if (it == s.layers.end()) return logits;
    MOEGRAD_CHECK(!(GradMode::enabled() && logits.requires_grad()),
                  "steering: router steering is for inference (under NoGradGuard): it would cut "
                  "the router's gradient");
    const Tensor& x = logits.data();
    MOEGRAD_CHECK(x.dim() == 2, "steering: router logits ", shape_str(x.shape()),
                  " must be [N, E]");
    const int64_t e = x.size(1);
    const LayerSteering& ls = it->second;
    for (const std::vector<int64_t>* set : {&ls.promote, &ls.demote})
      MOEGRAD_CHECK(set->empty() || set->back() < e, "steering: expert ", set->back(), " of layer ",
                    layer, " out of range for ", e, " experts");
    const Tensor scores = log_softmax(x, -1);
    Tensor out = scores;
    if (s.mode == SteeringMode::Hard) {
      if (!ls.promote.empty())
        out = where(expert_mask(ls.promote, e, x.device()),
                    add_scalar(amax(scores, {-1}, true), s.delta), out);
      if (!ls.demote.empty()) {
        const Tensor low = add_scalar(neg(amax(neg(scores), {-1}, true)), -s.delta);
        out = where(expert_mask(ls.demote, e, x.device()), low, out);
      }
    } else {
      std::vector<double> shift(size_t(e), 0.0);
      auto weight = [&](int64_t x) {
        const auto w = ls.weights.find(x);
        return s.lambda * (w == ls.weights.end() ? 1.0 : w->second);
      };
      for (int64_t p : ls.promote) shift[size_t(p)] = weight(p);
      for (int64_t d : ls.demote) shift[size_t(d)] = -weight(d);
      out = add(scores, from_vector(shift, {e}).to(x.dtype()).to(x.device()));
    }
    return Variable(out);
  };
}

LayerRange parse_layer_range(const std::string& text) {
  auto number = [](std::string_view digits, int64_t& out) {
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return !digits.empty() && ec == std::errc() && end == digits.data() + digits.size() &&
           out >= 0;
  };
  const std::string_view t = text;
  const size_t dash = t.find('-');
  LayerRange r;
  bool ok = false;
  if (dash == std::string_view::npos) {
    ok = number(t, r.first);
    r.last = r.first;
  } else {
    ok = number(t.substr(0, dash), r.first) && number(t.substr(dash + 1), r.last);
  }
  MOEGRAD_CHECK(ok, "must be FIRST-LAST (e.g. 5-10) or one layer, got '", text, "'");
  MOEGRAD_CHECK(r.first <= r.last, "'", text, "': the first layer is after the last");
  return r;
}

std::vector<int64_t> middle_layers(int64_t num_layers) {
  MOEGRAD_CHECK(num_layers > 0, "middle_layers: need at least one layer, got ", num_layers);
  std::vector<int64_t> out;
  for (int64_t l = num_layers / 3; l < (2 * num_layers + 2) / 3; ++l) out.push_back(l);
  return out;
}

std::vector<std::vector<PreferredExpert>> preferred_experts(const JsonReader& analysis,
                                                            const std::string& language,
                                                            const std::string& reference,
                                                            const ExpertThreshold& threshold) {
  check_threshold(threshold);
  const std::vector<std::vector<double>> f = frequencies(analysis, language);
  const double mean_expert =
      double(analysis_count(analysis, "top_k")) / double(analysis_count(analysis, "experts"));
  const std::vector<std::vector<double>> r =
      reference.empty() ? std::vector<std::vector<double>>() : frequencies(analysis, reference);
  std::vector<std::vector<PreferredExpert>> out;
  for (size_t l = 0; l < f.size(); ++l) {
    std::vector<double> diff(f[l].size());
    for (size_t e = 0; e < diff.size(); ++e)
      diff[e] = f[l][e] - (r.empty() ? mean_expert : r[l][e]);
    double cut = threshold.tau;
    if (threshold.num_std > 0) {
      double mean = 0, var = 0;
      for (double d : diff) mean += d / double(diff.size());
      for (double d : diff) var += (d - mean) * (d - mean) / double(diff.size());
      // No spread selects nothing: nothing stands out.
      cut = var > 0 ? mean + threshold.num_std * std::sqrt(var)
                    : std::numeric_limits<double>::infinity();
    }
    std::vector<PreferredExpert> chosen;
    for (size_t e = 0; e < diff.size(); ++e)
      if (diff[e] > cut) chosen.push_back({int64_t(e), diff[e]});
    std::stable_sort(chosen.begin(), chosen.end(),
                     [](const PreferredExpert& a, const PreferredExpert& b) {
                       return a.difference > b.difference;
                     });
    out.push_back(std::move(chosen));
  }
  return out;
}

std::vector<std::vector<PreferredExpert>> language_specialised_experts(
    const JsonReader& analysis, const std::string& language, const ExpertThreshold& threshold) {
  return preferred_experts(analysis, language, analysis["english"].string(), threshold);
}

std::vector<std::vector<PreferredExpert>> task_experts(const JsonReader& analysis,
                                                       const std::string& task,
                                                       const ExpertThreshold& threshold) {
  return preferred_experts(analysis, task, "", threshold);
}

Steering steering_from_analysis(const JsonReader& analysis, const SteeringFromAnalysisOptions& o) {
  MOEGRAD_CHECK(std::isfinite(o.delta) && o.delta >= 0 && std::isfinite(o.lambda) && o.lambda >= 0,
                "steering_from_analysis: delta and lambda must be non-negative, got ", o.delta,
                " and ", o.lambda);
  const std::string english = analysis["english"].string();
  const std::string language = o.language.empty() ? english : o.language;
  const std::vector<std::vector<PreferredExpert>> preferred =
      preferred_experts(analysis, language, o.reference, o.threshold);
  const int64_t num_layers = analysis_count(analysis, "layers");
  if (int64_t(preferred.size()) != num_layers)
    analysis["per_layer"].fail(detail::concat("has ", preferred.size(), " layers, not ", num_layers));
  std::vector<int64_t> layers;
  if (o.layers) {
    // Checked before the range is spelled out: a mistyped 0-99999999999 is an error, not a list.
    MOEGRAD_CHECK(o.layers->first >= 0 && o.layers->first <= o.layers->last &&
                      o.layers->last < num_layers,
                  "steering_from_analysis: layers ", o.layers->first, "-", o.layers->last,
                  " out of range for an analysis of ", num_layers, " layers");
    for (int64_t l = o.layers->first; l <= o.layers->last; ++l) layers.push_back(l);
  } else {
    layers = middle_layers(num_layers);
  }
  Steering s;
  s.mode = o.mode;
  s.delta = o.delta;
  s.lambda = o.lambda;
  for (int64_t l : layers) {
    LayerSteering& ls = s.layers[l];
    for (const PreferredExpert& p : preferred[size_t(l)]) {
      ls.promote.push_back(p.expert);
      if (o.mode == SteeringMode::Soft) ls.weights[p.expert] = p.difference;
    }
    std::sort(ls.promote.begin(), ls.promote.end());
  }
  json rule = o.threshold.num_std > 0 ? json{{"num_std", o.threshold.num_std}}
                                      : json{{"tau", o.threshold.tau}};
  s.provenance = {{"method", "preferred experts by activation frequency"},
                  {"language", language},
                  {"reference", o.reference.empty() ? "mean expert" : o.reference},
                  {"threshold", rule},
                  {"analysis_english", english}};
  return s;
}

}  // namespace moegrad::eval
