// The evaluation entry points on a model moved to a GPU, as `moegrad score`, `generate`,
// `trace`, `analyze` and `benchmark run` call them with --device cuda: the same results as the
// same model on the CPU.
#include <cmath>

#include "eval/batch_score.h"
#include "eval/generate.h"
#include "eval/score.h"
#include "eval/trace.h"
#include "tests/testing.h"
#include "tests/tiny_olmoe.h"

namespace moegrad {
namespace {

struct CpuAndGpuModels {
  std::unique_ptr<OlmoeForCausalLM> cpu, gpu;
};

// Two copies of one tiny model (same seed), the second on the GPU.
CpuAndGpuModels cpu_and_gpu_models() {
  const OlmoeConfig c = testing::tiny_olmoe_config(40, 4, 2, 32);
  Generator a(11), b(11);
  CpuAndGpuModels m{testing::tiny_olmoe(c, a), testing::tiny_olmoe(c, b)};
  m.gpu->to(Device::cuda());
  return m;
}

const std::vector<int32_t> kContext{3, 9}, kTokens{1, 4, 1, 5, 9, 2, 6, 5, 3, 5};

TEST(EvalCuda, ScoresMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  const CpuAndGpuModels m = cpu_and_gpu_models();
  const ScoreResult cpu = score_tokens(*m.cpu, kContext, kTokens);
  const ScoreResult gpu = score_tokens(*m.gpu, kContext, kTokens);
  ASSERT_EQ(gpu.token_logprobs.size(), kTokens.size());
  for (size_t i = 0; i < kTokens.size(); ++i)
    EXPECT_NEAR(gpu.token_logprobs[i], cpu.token_logprobs[i],
                1e-5 * (1 + std::abs(cpu.token_logprobs[i])))
        << i;

  // Padded into one batch; the empty context starts from id 0 (the tiny config's EOS id is
  // OLMoE's, outside its 40 tokens).
  const std::vector<eval::ScoreRequest> requests{{kContext, kTokens}, {{}, {7, 8}}, {{2}, {}}};
  eval::BatchScoreOptions options;
  options.start_id = 0;
  const std::vector<eval::ScoredSpan> a = eval::score_batched(*m.cpu, requests, options);
  const std::vector<eval::ScoredSpan> b = eval::score_batched(*m.gpu, requests, options);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(b[i].logprob, a[i].logprob, 1e-5 * (1 + std::abs(a[i].logprob))) << i;
    EXPECT_EQ(b[i].tokens, a[i].tokens) << i;
  }
}

// Greedy decoding and routing choices compare exactly: a near-tie that f32 rounding could flip
// is unlikely at these sizes, and the seed is fixed, so a difference is a fault, not noise.
TEST(EvalCuda, GenerationAndRoutingTraceMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  const CpuAndGpuModels m = cpu_and_gpu_models();
  GenerateOptions greedy;
  greedy.max_new_tokens = 8;
  greedy.temperature = 0;
  EXPECT_EQ(generate(*m.gpu, kTokens, greedy), generate(*m.cpu, kTokens, greedy));

  const eval::RoutingTrace cpu = eval::trace_routing(*m.cpu, kTokens);
  const eval::RoutingTrace gpu = eval::trace_routing(*m.gpu, kTokens);
  ASSERT_EQ(gpu.layers.size(), cpu.layers.size());
  for (size_t l = 0; l < cpu.layers.size(); ++l) {
    ASSERT_EQ(gpu.layers[l].size(), kTokens.size());
    for (size_t t = 0; t < kTokens.size(); ++t) {
      EXPECT_EQ(gpu.layers[l][t].experts, cpu.layers[l][t].experts) << l << " " << t;
      for (size_t i = 0; i < cpu.layers[l][t].weights.size(); ++i)
        EXPECT_NEAR(gpu.layers[l][t].weights[i], cpu.layers[l][t].weights[i], 1e-5);
    }
  }
}

}  // namespace
}  // namespace moegrad
