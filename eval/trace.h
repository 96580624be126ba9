// Which experts each token of one text goes to, layer by layer, and with what weights: the
// routing of a single forward, for teaching and inspection (moegrad trace).
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/olmoe.h"

namespace moegrad::eval {

struct TokenRouting {
  std::vector<int64_t> experts;  // the top-k, in the router's order (largest weight first)
  std::vector<double> weights;   // the weights their outputs are combined with
};

struct RoutingTrace {
  std::vector<int32_t> ids;
  std::vector<std::vector<TokenRouting>> layers;  // [layer][token]
};

// Routes `ids` (one sequence, at most max_position_embeddings long) through `model` without
// gradients, keeping any intervention hook the model has (so a steered model traces steered).
RoutingTrace trace_routing(OlmoeForCausalLM& model, const std::vector<int32_t>& ids);

// {"ids": [...], "layers": [[{"experts": [...], "weights": [...]}, ...], ...]}
nlohmann::json to_json(const RoutingTrace& trace);

}  // namespace moegrad::eval
