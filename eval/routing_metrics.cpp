#include "eval/routing_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace moegrad::eval {
namespace {

void check_same_size(const Distribution& p, const Distribution& q, const char* what) {
  MOEGRAD_CHECK(p.size() == q.size(), what, ": distributions over ", p.size(), " and ", q.size(),
                " experts");
}

double plogq(double p, double q) { return p > 0 ? p * std::log(q) : 0.0; }

// Rows of a [language][expert] table must all cover the same experts.
size_t experts_of(const std::vector<std::vector<double>>& table, const char* what) {
  MOEGRAD_CHECK(!table.empty(), what, ": the table has no language");
  for (const auto& row : table)
    MOEGRAD_CHECK(row.size() == table[0].size(), what, ": rows of ", table[0].size(), " and ",
                  row.size(), " experts");
  return table[0].size();
}

}  // namespace

Distribution normalize(const std::vector<double>& counts) {
  const double sum = std::accumulate(counts.begin(), counts.end(), 0.0);
  Distribution q(counts.size(), 0.0);
  if (sum > 0)
    for (size_t i = 0; i < counts.size(); ++i) q[i] = counts[i] / sum;
  return q;
}

double entropy(const Distribution& q) {
  double h = 0;
  for (double x : q) h -= plogq(x, x);
  return h;
}

double jsd(const Distribution& p, const Distribution& q) {
  check_same_size(p, q, "jsd");
  double kl_p = 0, kl_q = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double m = std::max((p[i] + q[i]) / 2, 1e-10);
    kl_p += plogq(p[i], p[i]) - plogq(p[i], m);
    kl_q += plogq(q[i], q[i]) - plogq(q[i], m);
  }
  return (kl_p + kl_q) / 2;
}

double normalized_jsd(const Distribution& p, const Distribution& q) {
  check_same_size(p, q, "normalized_jsd");
  const double room = std::log(double(p.size())) - (entropy(p) + entropy(q)) / 2;
  return jsd(p, q) / std::max(room, 1e-6);
}

double specialization_score(const std::vector<std::vector<double>>& counts) {
  const size_t experts = experts_of(counts, "specialization_score");
  double total = 0;
  std::vector<double> per_language, per_expert(experts, 0.0);
  for (const auto& row : counts) {
    per_language.push_back(std::accumulate(row.begin(), row.end(), 0.0));
    total += per_language.back();
    for (size_t e = 0; e < experts; ++e) per_expert[e] += row[e];
  }
  if (total <= 0) return 0.0;
  const double h_language = entropy(normalize(per_language));
  if (h_language <= 0) return 0.0;
  // H(L | E) = sum_e P(e) H(L | e).
  double h_given_expert = 0;
  for (size_t e = 0; e < experts; ++e) {
    if (per_expert[e] <= 0) continue;
    std::vector<double> column;
    for (const auto& row : counts) column.push_back(row[e]);
    h_given_expert += per_expert[e] / total * entropy(normalize(column));
  }
  return (h_language - h_given_expert) / h_language;
}

std::vector<Distribution> activation_shares(const std::vector<std::vector<double>>& counts) {
  experts_of(counts, "activation_shares");
  std::vector<Distribution> shares;
  for (const auto& row : counts) shares.push_back(normalize(row));
  return shares;
}

std::vector<ExpertGap> expert_gaps(const std::vector<Distribution>& shares) {
  const size_t experts = experts_of(shares, "expert_gaps");
  std::vector<ExpertGap> gaps;
  for (size_t e = 0; e < experts; ++e) {
    ExpertGap g{int64_t(e), 0, 0.0};
    double first = -1, second = 0;
    for (size_t l = 0; l < shares.size(); ++l) {
      const double a = shares[l][e];
      if (a > first) {
        second = std::max(first, 0.0);
        first = a;
        g.top_language = int64_t(l);
      } else {
        second = std::max(second, a);
      }
    }
    g.gap = first - (shares.size() > 1 ? second : 0.0);
    gaps.push_back(g);
  }
  std::stable_sort(gaps.begin(), gaps.end(),
                   [](const ExpertGap& a, const ExpertGap& b) { return a.gap > b.gap; });
  return gaps;
}

std::map<int64_t, std::vector<int64_t>> language_specific_experts(
    const std::vector<Distribution>& shares, double alpha) {
  std::map<int64_t, std::vector<int64_t>> out;
  for (const ExpertGap& g : expert_gaps(shares))
    if (g.gap >= alpha) out[g.top_language].push_back(g.expert);
  return out;
}

std::vector<int64_t> shared_experts(const std::vector<Distribution>& shares,
                                    const std::vector<int64_t>& languages, int64_t k,
                                    const std::vector<int64_t>& exclude) {
  const size_t experts = experts_of(shares, "shared_experts");
  MOEGRAD_CHECK(!languages.empty(), "shared_experts: no language to average over");
  MOEGRAD_CHECK(k >= 0, "shared_experts: k must be >= 0, got ", k);
  std::vector<std::pair<double, int64_t>> mean;
  for (size_t e = 0; e < experts; ++e) {
    double sum = 0;
    for (int64_t l : languages) {
      MOEGRAD_CHECK(l >= 0 && size_t(l) < shares.size(), "shared_experts: language ", l,
                    " out of range for ", shares.size(), " languages");
      sum += shares[size_t(l)][e];
    }
    mean.emplace_back(sum / double(languages.size()), int64_t(e));
  }
  std::stable_sort(mean.begin(), mean.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<int64_t> out;
  for (const auto& [m, e] : mean) {
    if (int64_t(out.size()) == k) break;
    if (std::find(exclude.begin(), exclude.end(), e) == exclude.end()) out.push_back(e);
  }
  return out;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  MOEGRAD_CHECK(x.size() == y.size(), "pearson: ", x.size(), " and ", y.size(), " samples");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (x.size() < 2) return nan;
  const double n = double(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx <= 0 || syy <= 0) return nan;
  return sxy / std::sqrt(sxx * syy);
}

}  // namespace moegrad::eval
