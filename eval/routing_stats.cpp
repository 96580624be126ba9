#include "eval/routing_stats.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/error.h"

namespace moegrad::eval {
namespace {

template <typename T>
std::vector<std::vector<T>> table(int64_t rows, int64_t cols) {
  return std::vector<std::vector<T>>(size_t(rows), std::vector<T>(size_t(cols), T(0)));
}

// j[key] as T, or an error naming the key and what was expected.
template <typename T>
T field(const nlohmann::json& j, const std::string& key, const std::string& where) {
  MOEGRAD_CHECK(j.is_object() && j.contains(key), "routing stats: ", where, " has no '", key, "'");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw Error("routing stats: " + where + "." + key + " is malformed: " + e.what());
  }
}

template <typename T>
void check_table(const std::vector<std::vector<T>>& t, int64_t rows, int64_t cols,
                 const std::string& where) {
  bool ok = int64_t(t.size()) == rows;
  for (const auto& row : t) ok = ok && int64_t(row.size()) == cols;
  MOEGRAD_CHECK(ok, "routing stats: ", where, " must be [", rows, "][", cols, "]");
}

}  // namespace

RoutingStats::RoutingStats(int64_t layers, int64_t experts, int64_t top_k)
    : layers_(layers), experts_(experts), top_k_(top_k) {
  MOEGRAD_CHECK(layers > 0 && experts > 0 && top_k > 0 && top_k <= experts,
                "RoutingStats: need layers, experts > 0 and 0 < top_k <= experts, got ", layers,
                ", ", experts, ", ", top_k);
}

LanguageRouting& RoutingStats::language(const std::string& name) {
  LanguageRouting& l = languages_[name];
  if (l.counts.empty()) {
    l.counts = table<int64_t>(layers_, experts_);
    l.prob_sum = table<double>(layers_, experts_);
    l.consistency_sum.assign(size_t(layers_), 0.0);
    l.consistency_pairs.assign(size_t(layers_), 0);
  }
  return l;
}

RouterCapture RoutingStats::capture(std::vector<std::string> languages, int64_t seq_len,
                                    std::vector<std::string> documents, bool keep_sequences) {
  MOEGRAD_CHECK(seq_len > 0, "RoutingStats::capture: seq_len must be positive, got ", seq_len);
  MOEGRAD_CHECK(documents.empty() || documents.size() == languages.size(),
                "RoutingStats::capture: ", documents.size(), " document names for ",
                languages.size(), " sequences");
  const size_t first_sequence = sequences_.size();
  if (keep_sequences)
    for (size_t b = 0; b < languages.size(); ++b)
      sequences_.push_back({languages[b], documents.empty() ? "" : documents[b],
                            table<double>(layers_, experts_)});
  for (const std::string& l : languages) language(l);
  return [this, languages = std::move(languages), seq_len, first_sequence,
          keep_sequences](const RouterRecord& r) {
    const int64_t rows = int64_t(languages.size()), n = rows * seq_len;
    MOEGRAD_CHECK(r.layer >= 0 && r.layer < layers_, "RoutingStats: layer ", r.layer,
                  " out of range for ", layers_, " layers");
    MOEGRAD_CHECK(r.logits.dim() == 2 && r.logits.size(0) == n && r.logits.size(1) == experts_,
                  "RoutingStats: layer ", r.layer, " routed logits of shape ",
                  shape_str(r.logits.shape()), ", expected [", n, ", ", experts_, "]");
    MOEGRAD_CHECK(r.topk_indices.dim() == 2 && r.topk_indices.size(0) == n &&
                      r.topk_indices.size(1) == top_k_,
                  "RoutingStats: layer ", r.layer, " chose experts of shape ",
                  shape_str(r.topk_indices.shape()), ", expected [", n, ", ", top_k_, "]");
    const std::vector<double> logits = r.logits.to(Device::cpu()).to_vector<double>();
    const std::vector<int64_t> chosen = r.topk_indices.to(Device::cpu()).to_vector<int64_t>();
    const size_t layer = size_t(r.layer), E = size_t(experts_), k = size_t(top_k_);
    std::vector<double> p(E);
    for (int64_t b = 0; b < rows; ++b) {
      LanguageRouting& lang = languages_.at(languages[size_t(b)]);
      if (layer == 0) lang.tokens += seq_len;
      std::vector<double>* mean =
          keep_sequences ? &sequences_[first_sequence + size_t(b)].mean_prob[layer] : nullptr;
      for (int64_t t = 0; t < seq_len; ++t) {
        const size_t row = size_t(b * seq_len + t);
        // The router's softmax, in f64 from the logits it routed with.
        const double* x = &logits[row * E];
        const double top = *std::max_element(x, x + E);
        double sum = 0;
        for (size_t e = 0; e < E; ++e) sum += p[e] = std::exp(x[e] - top);
        for (size_t e = 0; e < E; ++e) {
          p[e] /= sum;
          lang.prob_sum[layer][e] += p[e];
          if (mean) (*mean)[e] += p[e] / double(seq_len);
        }
        const int64_t* s = &chosen[row * k];
        for (size_t i = 0; i < k; ++i) {
          MOEGRAD_CHECK(s[i] >= 0 && s[i] < experts_, "RoutingStats: layer ", r.layer,
                        " chose expert ", s[i], " of ", experts_);
          ++lang.counts[layer][size_t(s[i])];
        }
        if (t > 0) {
          const int64_t* prev = s - k;
          int64_t shared = 0;
          for (size_t i = 0; i < k; ++i) shared += std::count(prev, prev + k, s[i]) > 0;
          lang.consistency_sum[layer] += double(shared) / double(k);
          ++lang.consistency_pairs[layer];
        }
      }
    }
  };
}

nlohmann::json RoutingStats::to_json() const {
  nlohmann::json langs = nlohmann::json::object();
  for (const auto& [name, l] : languages_)
    langs[name] = {{"tokens", l.tokens},
                   {"counts", l.counts},
                   {"prob_sum", l.prob_sum},
                   {"consistency_sum", l.consistency_sum},
                   {"consistency_pairs", l.consistency_pairs}};
  nlohmann::json seqs = nlohmann::json::array();
  for (const SequenceRouting& s : sequences_)
    seqs.push_back(
        {{"language", s.language}, {"document", s.document}, {"mean_prob", s.mean_prob}});
  return {{"format", "moegrad.routing_stats"}, {"version", 1},      {"layers", layers_},
          {"experts", experts_},               {"top_k", top_k_},   {"languages", langs},
          {"sequences", seqs}};
}

RoutingStats RoutingStats::from_json(const nlohmann::json& j) {
  MOEGRAD_CHECK(j.is_object() && j.value("format", "") == "moegrad.routing_stats" &&
                    j.value("version", 0) == 1,
                "routing stats: not a moegrad.routing_stats version 1 document");
  RoutingStats s(field<int64_t>(j, "layers", "the document"),
                 field<int64_t>(j, "experts", "the document"),
                 field<int64_t>(j, "top_k", "the document"));
  const auto langs = field<nlohmann::json>(j, "languages", "the document");
  MOEGRAD_CHECK(langs.is_object(), "routing stats: 'languages' must be an object");
  for (const auto& [name, v] : langs.items()) {
    const std::string where = "languages." + name;
    LanguageRouting& l = s.language(name);
    l.tokens = field<int64_t>(v, "tokens", where);
    l.counts = field<std::vector<std::vector<int64_t>>>(v, "counts", where);
    l.prob_sum = field<std::vector<std::vector<double>>>(v, "prob_sum", where);
    l.consistency_sum = field<std::vector<double>>(v, "consistency_sum", where);
    l.consistency_pairs = field<std::vector<int64_t>>(v, "consistency_pairs", where);
    check_table(l.counts, s.layers_, s.experts_, where + ".counts");
    check_table(l.prob_sum, s.layers_, s.experts_, where + ".prob_sum");
    MOEGRAD_CHECK(int64_t(l.consistency_sum.size()) == s.layers_ &&
                      int64_t(l.consistency_pairs.size()) == s.layers_,
                  "routing stats: ", where, ": consistency needs one entry per layer");
  }
  const auto seqs = j.value("sequences", nlohmann::json::array());
  for (size_t i = 0; i < seqs.size(); ++i) {
    const std::string where = "sequences[" + std::to_string(i) + "]";
    SequenceRouting r{field<std::string>(seqs[i], "language", where),
                      field<std::string>(seqs[i], "document", where),
                      field<std::vector<std::vector<double>>>(seqs[i], "mean_prob", where)};
    check_table(r.mean_prob, s.layers_, s.experts_, where + ".mean_prob");
    s.sequences_.push_back(std::move(r));
  }
  return s;
}

}  // namespace moegrad::eval
