#include "eval/vocab_overlap.h"

#include <algorithm>

#include "core/error.h"
#include "eval/routing_metrics.h"

namespace moegrad::eval {
namespace {

int64_t total(const TypeCounts& c) {
  int64_t n = 0;
  for (const auto& [id, k] : c) n += k;
  return n;
}

}  // namespace

double jaccard_overlap(const TypeCounts& a, const TypeCounts& b, int64_t min_count) {
  MOEGRAD_CHECK(min_count >= 1, "jaccard_overlap: min_count must be >= 1, got ", min_count);
  auto count = [&](const TypeCounts& c, int32_t id) {
    auto it = c.find(id);
    return it == c.end() ? int64_t(0) : it->second;
  };
  int64_t both = 0, either = 0;
  auto visit = [&](const TypeCounts& c, const TypeCounts& other, bool count_both) {
    for (const auto& [id, k] : c) {
      const bool in_c = k >= min_count, in_other = count(other, id) >= min_count;
      if (in_c && in_other && count_both) ++both;
      if (in_c && (count_both || !in_other)) ++either;
    }
  };
  visit(a, b, true);   // a's types, and those also in b
  visit(b, a, false);  // b's types that a lacks
  return either == 0 ? 0.0 : double(both) / double(either);
}

double weighted_overlap(const TypeCounts& a, const TypeCounts& b) {
  const double na = double(total(a)), nb = double(total(b));
  if (na == 0 || nb == 0) return 0.0;
  double sum = 0;
  for (const auto& [id, k] : a) {
    auto it = b.find(id);
    if (it != b.end()) sum += std::min(double(k) / na, double(it->second) / nb);
  }
  return sum;
}

TypeCounts count_types(const data::TokenShard& shard, int64_t max_tokens) {
  TypeCounts out;
  const int64_t n = std::min(max_tokens, shard.num_tokens());
  std::vector<int32_t> ids(size_t(std::max<int64_t>(n, 0)));
  if (n > 0) shard.copy_tokens(0, n, ids.data());
  for (int32_t id : ids) ++out[id];
  return out;
}

nlohmann::json overlap_analysis(const std::map<std::string, TypeCounts>& types,
                                const nlohmann::json& routing, int64_t min_count) {
  const nlohmann::json& names = routing.at("languages");
  const nlohmann::json& last = routing.at("per_layer").back().at("jsd");
  nlohmann::json pairs = nlohmann::json::array();
  std::vector<double> jac, wei, div;
  for (size_t i = 0; i < names.size(); ++i)
    for (size_t j = i + 1; j < names.size(); ++j) {
      const std::string a = names[i], b = names[j];
      MOEGRAD_CHECK(types.count(a) && types.count(b), "overlap_analysis: no token types for '",
                    types.count(a) ? b : a, "'");
      jac.push_back(jaccard_overlap(types.at(a), types.at(b), min_count));
      wei.push_back(weighted_overlap(types.at(a), types.at(b)));
      div.push_back(last[i][j].get<double>());
      pairs.push_back({{"a", a}, {"b", b}, {"jaccard", jac.back()}, {"weighted", wei.back()},
                       {"last_layer_jsd", div.back()}});
    }
  return {{"min_count", min_count},
          {"pairs", pairs},
          {"pearson_with_last_layer_jsd",
           {{"jaccard", pearson(jac, div)}, {"weighted", pearson(wei, div)}}}};
}

}  // namespace moegrad::eval
