// Every routing metric against values worked out by hand on small tables.
#include <cmath>

#include "eval/routing_metrics.h"
#include "tests/testing.h"

namespace moegrad::eval {
namespace {

const double kLn2 = std::log(2.0);

TEST(RoutingMetrics, NormalizeAndEntropy) {
  EXPECT_EQ(normalize({1, 3}), (Distribution{0.25, 0.75}));
  EXPECT_EQ(normalize({0, 0}), (Distribution{0, 0}));
  EXPECT_DOUBLE_EQ(entropy({0.5, 0.5}), kLn2);
  EXPECT_DOUBLE_EQ(entropy({1, 0}), 0.0);
  EXPECT_DOUBLE_EQ(entropy(normalize({1, 1, 1, 1})), std::log(4.0));
  // -(0.75 ln 0.75 + 0.25 ln 0.25)
  EXPECT_NEAR(entropy({0.75, 0.25}), 0.5623351446188083, 1e-15);
}

TEST(RoutingMetrics, JsdIsZeroForEqualLnTwoForDisjointAndSymmetric) {
  EXPECT_NEAR(jsd({0.2, 0.3, 0.5}, {0.2, 0.3, 0.5}), 0.0, 1e-15);
  EXPECT_NEAR(jsd({1, 0}, {0, 1}), kLn2, 1e-15);
  // m = (0.75, 0.25): KL(p||m) = ln(4/3) / 2, KL(q||m) = ln(4/3); their mean is 0.75 ln(4/3).
  EXPECT_NEAR(jsd({0.5, 0.5}, {1, 0}), 0.75 * std::log(4.0 / 3.0), 1e-15);
  EXPECT_DOUBLE_EQ(jsd({0.5, 0.5}, {1, 0}), jsd({1, 0}, {0.5, 0.5}));
  EXPECT_THROW(jsd({1}, {0.5, 0.5}), Error);
}

TEST(RoutingMetrics, NormalizedJsdDividesByTheRoomTheEntropiesLeave) {
  // Point masses: ln 2 of divergence out of ln 2 possible.
  EXPECT_NEAR(normalized_jsd({1, 0}, {0, 1}), 1.0, 1e-12);
  const Distribution p{0.5, 0.5, 0, 0}, q{0, 0, 0.5, 0.5};
  EXPECT_NEAR(normalized_jsd(p, q), kLn2 / (std::log(4.0) - kLn2), 1e-12);
  // Both uniform: no room, and no divergence.
  EXPECT_NEAR(normalized_jsd({0.5, 0.5}, {0.5, 0.5}), 0.0, 1e-9);
}

TEST(RoutingMetrics, SpecializationScore) {
  EXPECT_NEAR(specialization_score({{10, 0}, {0, 10}}), 1.0, 1e-15);
  EXPECT_NEAR(specialization_score({{5, 5}, {5, 5}}), 0.0, 1e-15);
  // H(L) = ln 2; each expert's column is (3, 1) or (1, 3): H(L|E) = H(0.75, 0.25).
  EXPECT_NEAR(specialization_score({{3, 1}, {1, 3}}),
              (kLn2 - 0.5623351446188083) / kLn2, 1e-12);
  EXPECT_EQ(specialization_score({{4, 2}}), 0.0);  // one language: nothing to tell apart
  EXPECT_THROW(specialization_score({{1, 2}, {1}}), Error);
}

// Shares of 3 experts for 2 languages: expert 0 is language 0's (gap 0.4), experts 1 and 2
// language 1's (gap 0.2 each, up to rounding).
const std::vector<Distribution> kShares = {{0.6, 0.3, 0.1}, {0.2, 0.5, 0.3}};

TEST(RoutingMetrics, GapsPickEachExpertsLanguage) {
  const std::vector<ExpertGap> gaps = expert_gaps(kShares);
  ASSERT_EQ(gaps.size(), 3u);
  EXPECT_EQ(gaps[0].expert, 0);
  EXPECT_EQ(gaps[0].top_language, 0);
  EXPECT_NEAR(gaps[0].gap, 0.4, 1e-15);
  EXPECT_EQ(gaps[1].top_language, 1);
  EXPECT_EQ(gaps[2].top_language, 1);
  EXPECT_NEAR(gaps[1].gap, 0.2, 1e-15);
  EXPECT_EQ(language_specific_experts(kShares, 0.25),
            (std::map<int64_t, std::vector<int64_t>>{{0, {0}}}));
  const auto both = language_specific_experts(kShares, 0.19);
  EXPECT_EQ(both.at(0), std::vector<int64_t>{0});
  EXPECT_EQ(both.at(1).size(), 2u);
  // One language: every expert is its own, with its whole share as the gap.
  EXPECT_NEAR(expert_gaps({{0.7, 0.3}})[0].gap, 0.7, 1e-15);
}

TEST(RoutingMetrics, SharedExpertsSkipTheLanguageSpecificOnes) {
  // Mean shares over both languages: 0.4, 0.4, 0.2.
  EXPECT_EQ(shared_experts(kShares, {0, 1}, 2, {}), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(shared_experts(kShares, {0, 1}, 2, {0}), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(shared_experts(kShares, {1}, 1, {}), (std::vector<int64_t>{1}));
  EXPECT_EQ(shared_experts(kShares, {0, 1}, 5, {}).size(), 3u);  // no more than there are
  EXPECT_THROW(shared_experts(kShares, {2}, 1, {}), Error);
}

TEST(RoutingMetrics, Pearson) {
  EXPECT_NEAR(pearson({1, 2, 3}, {2, 4, 6}), 1.0, 1e-15);
  EXPECT_NEAR(pearson({1, 2, 3}, {3, 2, 1}), -1.0, 1e-15);
  EXPECT_NEAR(pearson({1, 2, 3, 4}, {1, 3, 2, 4}), 0.8, 1e-15);
  EXPECT_TRUE(std::isnan(pearson({1, 2, 3}, {5, 5, 5})));
  EXPECT_TRUE(std::isnan(pearson({1}, {2})));
  EXPECT_THROW(pearson({1, 2}, {1}), Error);
}

}  // namespace
}  // namespace moegrad::eval
