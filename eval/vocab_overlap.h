// Vocabulary overlap between languages under one tokenizer, from the token types each
// language's text uses:
//   jaccard(A, B)  = |T_A ∩ T_B| / |T_A ∪ T_B|, T_X = the types with at least min_count
//                    occurrences in X's text (so one stray token does not make a type shared);
//   weighted(A, B) = sum over types of min(f_A(t), f_B(t)), f_X = X's type frequencies: the
//                    share of running text the two have in common (1 - total variation).
// Both lie in [0, 1], 1 for identical usage.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/token_shard.h"

namespace moegrad::eval {

using TypeCounts = std::map<int32_t, int64_t>;  // token id -> occurrences

double jaccard_overlap(const TypeCounts& a, const TypeCounts& b, int64_t min_count = 1);
double weighted_overlap(const TypeCounts& a, const TypeCounts& b);

// The types of the first max_tokens tokens of a shard, documents in order: the text that
// collect_routing routes with the same budget.
TypeCounts count_types(const data::TokenShard& shard, int64_t max_tokens);

// Both overlaps for every pair of `types`' languages, and their Pearson correlation over the
// pairs with the last layer's JSD of `routing` (analyze_routing's output over the same
// languages): {"min_count", "pairs": [{"a", "b", "jaccard", "weighted", "last_layer_jsd"}],
// "pearson_with_last_layer_jsd": {"jaccard", "weighted"}}.
nlohmann::json overlap_analysis(const std::map<std::string, TypeCounts>& types,
                                const nlohmann::json& routing, int64_t min_count);

}  // namespace moegrad::eval
