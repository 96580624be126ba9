// Routing statistics of held-out text: each language's documents, in shard order, cut into
// non-overlapping windows, routed through the model without gradients (evaluation routing: no
// hook but the collector's) into a RoutingStats.
#pragma once
#include <cstdint>
#include <vector>

#include "core/device.h"
#include "data/token_shard.h"
#include "eval/routing_stats.h"
#include "moe/olmoe.h"

namespace moegrad::eval {

struct RoutingCollectOptions {
  int64_t seq_len = 2048;          // window length; a document's last window may be shorter
  int64_t max_tokens = 1 << 20;    // per language: windows stop once this many are routed
  int64_t batch_size = 8;          // windows of one length per forward
  bool keep_sequences = true;      // each window's mean probabilities, named by its document
};

// Routes every shard's documents through `model` (on its device) into `stats`, which must
// match the model's layers, experts and top-k. A window is at most seq_len tokens of one
// document (windows never cross documents, so each carries its document's name for
// alignment). Leaves the model's router hooks cleared.
void collect_routing(OlmoeForCausalLM& model, const std::vector<data::TokenShard>& shards,
                     const RoutingCollectOptions& options, RoutingStats& stats);

}  // namespace moegrad::eval
