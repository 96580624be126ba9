// The metrics of the routing analyses (shared/spec/paper-recipe.md), on count tables and
// probability vectors: usage distributions, entropy, Jensen-Shannon divergence (plain and
// entropy-normalised), the specialisation score IG(L;E)/H(L), language-specific experts by
// activation gap, shared experts, and Pearson's correlation. Natural logs throughout unless
// said otherwise.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace moegrad::eval {

using Distribution = std::vector<double>;

// counts / sum(counts); all zeros when the sum is zero.
Distribution normalize(const std::vector<double>& counts);

// H(q) = -sum q ln q in nats (0 ln 0 = 0).
double entropy(const Distribution& q);

// JSD(p, q) = (KL(p || m) + KL(q || m)) / 2 with m = (p + q) / 2 clamped below at 1e-10 (as in
// Bandarkar et al.'s code), in nats: within [0, ln 2] for distributions.
double jsd(const Distribution& p, const Distribution& q);

// JSD / max(ln E - (H(p) + H(q)) / 2, 1e-6), E = the number of experts: divergence relative to
// what the two distributions' spread leaves possible.
double normalized_jsd(const Distribution& p, const Distribution& q);

// IG(L; E) / H(L) for a table counts[language][expert] of one layer: the share of the
// uncertainty about a token's language that knowing its expert removes (0: experts say nothing
// about the language; 1: each expert serves one language). The ratio is the same in bits and
// nats. 0 when H(L) is 0.
double specialization_score(const std::vector<std::vector<double>>& counts);

// a_l(e) = C_l(e) / sum_e' C_l(e') for each language of a [language][expert] table.
std::vector<Distribution> activation_shares(const std::vector<std::vector<double>>& counts);

struct ExpertGap {
  int64_t expert = 0;
  int64_t top_language = 0;  // index of the language with the largest share of this expert
  double gap = 0;            // its share minus the second largest (its share when one language)
};
// For every expert: the language that uses it most and by how much more than the next one;
// sorted by gap, largest first (ties: lower expert first).
std::vector<ExpertGap> expert_gaps(const std::vector<Distribution>& shares);

// Experts whose gap is at least alpha, by their top language (the paper: alpha = 0.01), in
// order of decreasing gap.
std::map<int64_t, std::vector<int64_t>> language_specific_experts(
    const std::vector<Distribution>& shares, double alpha);

// The k experts with the largest mean share over `languages`, skipping `exclude` (already
// chosen as language-specific) and taking the next; ties: lower expert first.
std::vector<int64_t> shared_experts(const std::vector<Distribution>& shares,
                                    const std::vector<int64_t>& languages, int64_t k,
                                    const std::vector<int64_t>& exclude);

// Pearson's r of paired samples; NaN when fewer than two pairs or either side is constant.
double pearson(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace moegrad::eval
