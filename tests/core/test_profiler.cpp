#include "core/profiler.h"

#include "core/ops/attention.h"
#include "core/ops/binary.h"
#include "core/ops/matmul.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(Profiler, RecordsNothingWhenOff) {
  profiler::stop();
  Tensor a = random_tensor({4, 4}, 1);
  matmul(a, a);
  profiler::start();
  EXPECT_TRUE(profiler::stop().empty());
}

TEST(Profiler, OpsCarryTheirCostPhaseAndModuleAndNestInScopes) {
  const int module_tag = 0;
  profiler::name_module(&module_tag, "model.layers.0.mlp");
  Tensor a = random_tensor({3, 5}, 2), b = random_tensor({5, 7}, 3);
  profiler::start();
  {
    profiler::PhaseScope phase(profiler::Phase::Forward);
    profiler::ModuleScope module(&module_tag);
    matmul(a, b);
    add(a, a);
  }
  const std::vector<profiler::Event> events = profiler::stop();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].kind, profiler::Kind::Phase);
  EXPECT_EQ(events[0].name, "forward");
  EXPECT_EQ(events[1].kind, profiler::Kind::Module);
  EXPECT_EQ(events[1].name, "model.layers.0.mlp");
  const profiler::Event& mm = events[2];
  EXPECT_EQ(mm.name, "matmul");
  EXPECT_EQ(mm.module, "model.layers.0.mlp");
  EXPECT_EQ(mm.phase, profiler::Phase::Forward);
  EXPECT_EQ(mm.depth, 2);
  EXPECT_FALSE(mm.inside_op);
  EXPECT_DOUBLE_EQ(mm.flops, 2.0 * 3 * 5 * 7);
  EXPECT_DOUBLE_EQ(mm.bytes, 8.0 * (3 * 5 + 5 * 7 + 3 * 7));
  EXPECT_EQ(events[3].name, "add");
  EXPECT_DOUBLE_EQ(events[3].bytes, 8.0 * 3 * 5 * 3);  // out, a, a
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_GE(events[i].start_us, events[0].start_us);
    EXPECT_LE(events[i].start_us + events[i].duration_us,
              events[0].start_us + events[0].duration_us + 1e-3);
  }
}

TEST(Profiler, GroupedMatmulCountsEveryGroup) {
  Tensor x = random_tensor({6, 4}, 4);
  std::vector<Tensor> w = {random_tensor({3, 4}, 5), random_tensor({3, 4}, 6)};
  profiler::start();
  grouped_matmul(x, w, {2, 4}, true);
  const std::vector<profiler::Event> events = profiler::stop();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].name, "grouped_matmul");
  EXPECT_DOUBLE_EQ(events[0].flops, 2.0 * 6 * 3 * 4);
}

TEST(Profiler, AttentionCountsTheFlopsOfItsPairs) {
  Tensor q = random_tensor({1, 2, 4, 8}, 7), k = random_tensor({1, 2, 4, 8}, 8),
         v = random_tensor({1, 2, 4, 8}, 9);
  profiler::start();
  attention_forward(q.transpose(1, 2).transpose(1, 2), k, v, true, Tensor(), std::nullopt);
  const std::vector<profiler::Event> events = profiler::stop();
  ASSERT_FALSE(events.empty());
  const profiler::Event& e = events.back();
  EXPECT_EQ(e.name, "scaled_dot_product_attention");
  // 2 heads x 10 causal pairs x 8 dims x 2 multiply-adds x 2 FLOPs.
  EXPECT_DOUBLE_EQ(e.flops, 2.0 * 10 * 8 * 2 * 2);
}

TEST(Profiler, AScopeStillOpenWhenTheProfileStopsIsDropped) {
  profiler::start();
  std::vector<profiler::Event> events;
  {
    profiler::Scope open(profiler::Kind::Step, "step", Device::cpu());
    events = profiler::stop();
  }
  ASSERT_EQ(events.size(), 1u);
  profiler::start();
  EXPECT_TRUE(profiler::stop().empty());
}

}  // namespace
}  // namespace moegrad
