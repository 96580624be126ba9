// A whole training step of a tiny OLMoE on the GPU against the same step on the CPU: every op of
// the forward, backward, clipping and AdamW in one test, with a freeze mask that trains some
// experts only, and the run's determinism on the GPU.
#include "core/random.h"
#include "moe/olmoe.h"
#include "tests/testing.h"
#include "train/adamw.h"
#include "train/freeze_mask.h"
#include "train/train_step.h"

namespace moegrad::train {
namespace {

OlmoeConfig tiny_config() {
  OlmoeConfig c;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.num_experts = 6;
  c.num_experts_per_tok = 2;
  c.max_position_embeddings = 64;
  return c;
}

struct StepsRun {
  std::vector<StepStats> stats;
  std::vector<std::pair<std::string, Tensor>> params;  // on the CPU, after the steps
};

StepsRun train_steps(Device device, const std::vector<std::string>& rules, int steps,
                     DType dtype = DType::F32, ExpertGemm gemm = ExpertGemm::Grouped) {
  Generator gen(5);
  InitOptions init;
  init.gen = &gen;
  OlmoeForCausalLM model(tiny_config(), init);
  model.to(dtype);
  model.to(device);
  model.set_expert_gemm(gemm);
  const NamedParameters params = model.named_parameters();
  const FreezeMask mask = FreezeMask::build(parse_freeze_rules(rules), params);
  mask.apply(params);
  AdamW optimizer(params, mask, AdamWOptions{0.9, 0.95, 1e-8, 0.1});
  StepOptions options;
  options.lr = 1e-2;
  options.clip = 1.0;
  options.loss_weights.hf_load_balancing = 0.01;
  options.loss_weights.z_loss = 0.001;
  Generator data(9);
  StepsRun run;
  for (int s = 0; s < steps; ++s) {
    std::vector<data::Batch> micro(2);
    for (data::Batch& b : micro) {
      b.input_ids = randint(0, 97, {3, 17}, data).to(device);
      b.languages = {"de", "en", "de"};
    }
    run.stats.push_back(train_step(model, optimizer, micro, options));
  }
  for (const auto& [name, p] : params) run.params.emplace_back(name, p.data().to(Device::cpu()));
  return run;
}

// Parameters within param_tol (absolute; a tenth of it relative), all of them, or, with
// share_outside > 0, all but that share of their elements: in bf16, a gradient element near zero
// may round to the other sign on the other backend, and Adam then moves it lr the other way
// (about lr whatever the gradient's size), so a few elements legitimately end up 2 lr a step
// apart; a tolerance that allows that everywhere could not fail at all.
void expect_runs_close(const StepsRun& gpu, const StepsRun& cpu, double tol,
                       double param_tol = 1e-4, double share_outside = 0) {
  ASSERT_EQ(gpu.stats.size(), cpu.stats.size());
  for (size_t s = 0; s < cpu.stats.size(); ++s) {
    EXPECT_NEAR(gpu.stats[s].loss, cpu.stats[s].loss, tol * std::abs(cpu.stats[s].loss)) << s;
    EXPECT_NEAR(gpu.stats[s].lb, cpu.stats[s].lb, tol * std::abs(cpu.stats[s].lb)) << s;
    EXPECT_NEAR(gpu.stats[s].z, cpu.stats[s].z, tol * std::abs(cpu.stats[s].z)) << s;
    EXPECT_NEAR(gpu.stats[s].grad_norm, cpu.stats[s].grad_norm, tol * cpu.stats[s].grad_norm) << s;
    EXPECT_NEAR(gpu.stats[s].languages.at("de").mean(), cpu.stats[s].languages.at("de").mean(),
                tol * cpu.stats[s].languages.at("de").mean());
  }
  ASSERT_EQ(gpu.params.size(), cpu.params.size());
  if (share_outside == 0) {
    for (size_t i = 0; i < cpu.params.size(); ++i)
      EXPECT_ALL_CLOSE(gpu.params[i].second.to(DType::F32), cpu.params[i].second.to(DType::F32),
                       param_tol, param_tol / 10)
          << cpu.params[i].first;
    return;
  }
  int64_t outside = 0, total = 0;
  for (size_t i = 0; i < cpu.params.size(); ++i) {
    const std::vector<float> a = gpu.params[i].second.to(DType::F32).to_vector<float>(),
                             b = cpu.params[i].second.to(DType::F32).to_vector<float>();
    ASSERT_EQ(a.size(), b.size()) << cpu.params[i].first;
    for (size_t j = 0; j < a.size(); ++j)
      outside += !(std::abs(double(a[j]) - b[j]) <= param_tol + param_tol / 10 * std::abs(b[j]));
    total += int64_t(a.size());
  }
  EXPECT_LE(double(outside), share_outside * double(total))
      << outside << " of " << total << " parameter elements differ by more than " << param_tol;
}

TEST(TrainStepCuda, ThreeStepsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  expect_runs_close(train_steps(Device::cuda(), {}, 3), train_steps(Device::cpu(), {}, 3), 1e-4);
}

TEST(TrainStepCuda, AMaskedStepMatchesTheCpuAndLeavesFrozenWeightsAlone) {
  SKIP_WITHOUT_GPU();
  const std::vector<std::string> rules = {"experts -1:1,2", "train model.layers.1.mlp.gate.weight"};
  const StepsRun gpu = train_steps(Device::cuda(), rules, 2);
  expect_runs_close(gpu, train_steps(Device::cpu(), rules, 2), 1e-4);
  const StepsRun untouched = train_steps(Device::cuda(), rules, 0);
  for (size_t i = 0; i < gpu.params.size(); ++i) {
    const std::string& name = gpu.params[i].first;
    if (name.find("layers.1.mlp.experts.1.") != std::string::npos ||
        name.find("layers.1.mlp.experts.2.") != std::string::npos ||
        name == "model.layers.1.mlp.gate.weight")
      continue;
    EXPECT_EQ(gpu.params[i].second.to_vector<float>(), untouched.params[i].second.to_vector<float>())
        << name << " is frozen but changed";
  }
}

// bf16 steps whose experts run moegrad's gathered kernels against the CPU's bf16 steps (grouped
// GEMMs there): the same function within bf16's rounding, and the same bits run to run.
TEST(TrainStepCuda, Bf16StepsWithGatheredExpertGemmsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  const StepsRun gpu = train_steps(Device::cuda(), {}, 2, DType::BF16, ExpertGemm::Gathered);
  // 0.4-0.6% of the elements measured beyond 2e-2 between two CPU runs whose RMSNorm eps
  // differed by 1e-5 of itself (a rounding step): a 2% budget.
  expect_runs_close(gpu, train_steps(Device::cpu(), {}, 2, DType::BF16), 2e-2, 2e-2, 0.02);
  const StepsRun again = train_steps(Device::cuda(), {}, 2, DType::BF16, ExpertGemm::Gathered);
  for (size_t i = 0; i < gpu.params.size(); ++i)
    EXPECT_EQ(again.params[i].second.to(DType::F32).to_vector<float>(),
              gpu.params[i].second.to(DType::F32).to_vector<float>())
        << gpu.params[i].first;
}

TEST(TrainStepCuda, IsBitIdenticalRunToRun) {
  SKIP_WITHOUT_GPU();
  const StepsRun a = train_steps(Device::cuda(), {}, 2), b = train_steps(Device::cuda(), {}, 2);
  for (size_t s = 0; s < a.stats.size(); ++s) EXPECT_EQ(a.stats[s].loss, b.stats[s].loss);
  for (size_t i = 0; i < a.params.size(); ++i)
    EXPECT_EQ(a.params[i].second.to_vector<float>(), b.params[i].second.to_vector<float>())
        << a.params[i].first;
}

}  // namespace
}  // namespace moegrad::train
