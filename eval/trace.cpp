#include "eval/trace.h"

#include "autograd/grad_mode.h"
#include "core/error.h"

namespace moegrad::eval {

RoutingTrace trace_routing(OlmoeForCausalLM& model, const std::vector<int32_t>& ids) {
  const OlmoeConfig& c = model.config();
  MOEGRAD_CHECK(!ids.empty(), "trace: no tokens to route");
  MOEGRAD_CHECK(int64_t(ids.size()) <= c.max_position_embeddings, "trace: ", ids.size(),
                " tokens are more than the model's max_position_embeddings, ",
                c.max_position_embeddings);
  RoutingTrace trace;
  trace.ids = ids;
  trace.layers.resize(size_t(c.num_hidden_layers));
  RouterHooks hooks = model.router_hooks();
  const RouterHooks kept = hooks;
  hooks.capture = [&](const RouterRecord& r) {
    if (kept.capture) kept.capture(r);
    const std::vector<int64_t> experts = r.topk_indices.to(Device::cpu()).to_vector<int64_t>();
    const std::vector<double> weights = r.topk_weights.to(Device::cpu()).to_vector<double>();
    const size_t k = size_t(r.topk_indices.size(1));
    std::vector<TokenRouting>& layer = trace.layers.at(size_t(r.layer));
    for (size_t t = 0; t < ids.size(); ++t)
      layer.push_back({{experts.begin() + long(t * k), experts.begin() + long((t + 1) * k)},
                       {weights.begin() + long(t * k), weights.begin() + long((t + 1) * k)}});
  };
  model.set_router_hooks(hooks);
  const Device device = model.device();
  std::vector<int64_t> input(ids.begin(), ids.end());
  try {
    NoGradGuard no_grad;
    model.forward(from_vector(input, {1, int64_t(ids.size())}).to(device));
  } catch (...) {
    model.set_router_hooks(kept);
    throw;
  }
  model.set_router_hooks(kept);
  return trace;
}

nlohmann::json to_json(const RoutingTrace& trace) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& layer : trace.layers) {
    nlohmann::json tokens = nlohmann::json::array();
    for (const TokenRouting& t : layer)
      tokens.push_back({{"experts", t.experts}, {"weights", t.weights}});
    layers.push_back(tokens);
  }
  return {{"ids", trace.ids}, {"layers", layers}};
}

}  // namespace moegrad::eval
