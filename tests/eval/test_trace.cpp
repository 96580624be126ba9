// Tracing one text's routing: what the router chose for every token and layer, under the
// model's own intervention, which stays in place afterwards.
#include <set>

#include "core/random.h"
#include "eval/trace.h"
#include "tests/testing.h"
#include "tests/tiny_olmoe.h"

namespace moegrad::eval {
namespace {

TEST(Trace, RecordsEachTokensExpertsAndKeepsTheModelsHooks) {
  const OlmoeConfig c = testing::tiny_olmoe_config(30, 6, 2, 8);
  Generator gen(2);
  const auto owned = testing::tiny_olmoe(c, gen);
  OlmoeForCausalLM& model = *owned;
  RouterHooks steer;
  steer.intervene = restrict_experts({1, 4, 5}, {1});  // layer 1 routes among 1, 4 and 5
  model.set_router_hooks(steer);

  const RoutingTrace t = trace_routing(model, {3, 7, 7, 29});
  ASSERT_EQ(t.layers.size(), 2u);
  std::set<int64_t> seen_layer1;
  for (size_t l = 0; l < 2; ++l) {
    ASSERT_EQ(t.layers[l].size(), 4u);
    for (const TokenRouting& r : t.layers[l]) {
      ASSERT_EQ(r.experts.size(), 2u);
      EXPECT_NE(r.experts[0], r.experts[1]);
      EXPECT_GE(r.weights[0], r.weights[1]);  // largest first
      if (l == 1) seen_layer1.insert(r.experts.begin(), r.experts.end());
    }
  }
  for (int64_t e : seen_layer1) EXPECT_TRUE(e == 1 || e == 4 || e == 5) << e;
  // The same token at the same position routes the same: a trace is a plain forward.
  EXPECT_EQ(trace_routing(model, {3, 7}).layers[0][1].experts, t.layers[0][1].experts);
  EXPECT_TRUE(bool(model.router_hooks().intervene));
  EXPECT_FALSE(bool(model.router_hooks().capture));
  EXPECT_EQ(to_json(t)["layers"][1][3]["experts"].size(), 2u);
  testing::expect_error([&] { trace_routing(model, std::vector<int32_t>(9, 1)); },
                        "max_position_embeddings, 8");
}

}  // namespace
}  // namespace moegrad::eval
