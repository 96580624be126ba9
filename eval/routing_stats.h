// Routing statistics streamed from the router capture hook (moe/hooks.h), without keeping any
// per-token tensor: per language x layer x expert the top-k selection counts and the sum of the
// router's softmax probabilities; per language x layer the token routing consistency (the mean
// share of experts that adjacent tokens of a sequence have in common, |S_t ∩ S_t+1| / k); and
// per sequence the mean probability vector of each layer, for paired analyses of
// document-aligned text (Bandarkar et al.'s expert importance).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/hooks.h"

namespace moegrad::eval {

struct LanguageRouting {
  int64_t tokens = 0;                          // tokens routed (each through every layer)
  std::vector<std::vector<int64_t>> counts;    // [layer][expert] top-k selections
  std::vector<std::vector<double>> prob_sum;   // [layer][expert] sums of router probabilities
  std::vector<double> consistency_sum;         // [layer] sums of |S_t ∩ S_t+1| / k
  std::vector<int64_t> consistency_pairs;      // [layer] adjacent pairs counted
};

struct SequenceRouting {
  std::string language;
  std::string document;                     // for aligning the same text across languages
  std::vector<std::vector<double>> mean_prob;  // [layer][expert] mean over the sequence's tokens
};

class RoutingStats {
 public:
  RoutingStats(int64_t layers, int64_t experts, int64_t top_k);

  // The capture hook for one forward of a [B, T] batch: row b holds a sequence of
  // languages[b] (documents[b] names it, when given). Keeps each sequence's mean probabilities
  // when keep_sequences. Every layer must be captured once per forward.
  RouterCapture capture(std::vector<std::string> languages, int64_t seq_len,
                        std::vector<std::string> documents = {}, bool keep_sequences = true);

  int64_t layers() const { return layers_; }
  int64_t experts() const { return experts_; }
  int64_t top_k() const { return top_k_; }
  const std::map<std::string, LanguageRouting>& languages() const { return languages_; }
  const std::vector<SequenceRouting>& sequences() const { return sequences_; }

  // {"format": "moegrad.routing_stats", "version": 1, "layers", "experts", "top_k",
  //  "languages": {lang: {"tokens", "counts", "prob_sum", "consistency_sum",
  //  "consistency_pairs"}}, "sequences": [{"language", "document", "mean_prob"}]}
  nlohmann::json to_json() const;
  // Throws naming what is malformed.
  static RoutingStats from_json(const nlohmann::json& j);

 private:
  LanguageRouting& language(const std::string& name);

  int64_t layers_, experts_, top_k_;
  std::map<std::string, LanguageRouting> languages_;
  std::vector<SequenceRouting> sequences_;
};

}  // namespace moegrad::eval
