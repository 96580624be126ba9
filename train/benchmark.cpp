#include "train/benchmark.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/ops/matmul.h"
#include "core/profiler.h"
#include "autograd/grad_mode.h"
#include "core/random.h"
#include "train/adamw.h"
#include "train/freeze_mask.h"
#include "train/setup.h"
#include "train/train_step.h"

namespace moegrad::train {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int64_t active_parameters(const OlmoeConfig& c) {
  const int64_t h = c.hidden_size, kv = c.num_key_value_heads * c.head_dim();
  const int64_t attention = h * h * 2 + h * kv * 2 + h + kv;  // q, o, k, v; q_norm, k_norm
  const int64_t moe = c.num_experts * h + c.num_experts_per_tok * 3 * c.intermediate_size * h;
  const int64_t layer = attention + moe + 2 * h;  // + the two layer norms
  return c.num_hidden_layers * layer + h + c.vocab_size * h;  // + final norm, lm_head
}

double training_flops_per_token(const OlmoeConfig& c, int64_t seq_len) {
  return 6.0 * double(active_parameters(c)) +
         12.0 * double(c.num_hidden_layers) * double(seq_len) * double(c.hidden_size);
}

double measure_gemm_gflops(Device device, DType dtype, int64_t n, int repeats) {
  Generator gen(7);
  Tensor a = randn({n, n}, gen, dtype, device), b = randn({n, n}, gen, dtype, device);
  matmul(a, b);  // warm: threads, pages, cuBLAS's handle
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    synchronize(device);
    const auto t0 = std::chrono::steady_clock::now();
    Tensor c = matmul(a, b);
    synchronize(device);
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * double(n) * double(n) * double(n) / best / 1e9;
}

SyntheticTraining::SyntheticTraining(const TrainConfig& config)
    : config_(config), device_(Device::select(config.train.device)), data_gen_(config.train.seed) {
  MOEGRAD_CHECK(config.model.from.empty(), config.source,
                ": model.from: the benchmark builds a new model from the [model] keys");
  model_ = new_model(config);
  set_memory_limit(device_, config.train.memory_limit_bytes());
  place_model(config, *model_, device_);
  // From here: the f32 model a bf16 run is converted from is not part of training's peak.
  reset_peak_memory(device_);
  const NamedParameters params = model_->named_parameters();
  const FreezeMask mask = apply_freeze_mask(config, *model_);
  optimizer_ = std::make_unique<AdamW>(params, mask, config.adamw(), config.param_groups());
  options_ = step_options(config);
  options_.language_losses = false;
}

SyntheticTraining::~SyntheticTraining() = default;

void SyntheticTraining::step() {
  const TrainSection& t = config_.train;
  std::vector<data::Batch> batches;
  {
    const profiler::PhaseScope phase(profiler::Phase::Data);
    for (int64_t i = 0; i < t.grad_accum; ++i) {
      data::Batch b;
      b.input_ids = randint(0, config_.model.config.vocab_size,
                            {t.batch_size, config_.data.seq_len}, data_gen_)
                        .to(device_);
      b.languages.assign(size_t(t.batch_size), "random");
      batches.push_back(std::move(b));
    }
  }
  train_step(*model_, *optimizer_, batches, options_);
}

BenchmarkResult run_training_benchmark(const TrainConfig& config, int64_t steps, int64_t warmup) {
  MOEGRAD_CHECK(steps > 0 && warmup >= 0, "benchmark: steps must be positive");
  SyntheticTraining training(config);
  const Device device = training.device();
  for (int64_t i = 0; i < warmup; ++i) training.step();
  const MemoryStats before = memory_stats(device);
  const int64_t waits_before = cuda_host_waits();
  const double seconds = training.median_step_seconds(steps);
  const MemoryStats after = memory_stats(device);
  BenchmarkResult r;
  r.driver_allocations = after.driver_allocations - before.driver_allocations;
  r.cache_releases = after.cache_releases - before.cache_releases;
  r.host_waits = cuda_host_waits() - waits_before;
  r.steps = steps;
  r.tokens_per_step = training.tokens_per_step();
  r.seconds_per_step = seconds;
  r.tokens_per_s = double(r.tokens_per_step) / r.seconds_per_step;
  r.gflops = r.tokens_per_s * training_flops_per_token(config.model.config, config.data.seq_len) / 1e9;
  r.memory = memory_report(device);
  // 1024^3 is a fraction of a GPU's rate (30 of its 52 TFLOP/s on an H100): there the
  // reference is a GEMM that fills the chip.
  r.gemm_gflops =
      measure_gemm_gflops(device, config.train.dtype(), device.is_cuda() ? 4096 : 1024);
  return r;
}

MemoryReport inference_memory(const TrainConfig& config) {
  const Device device = Device::select(config.train.device);
  const std::unique_ptr<OlmoeForCausalLM> model = new_model(config);
  place_model(config, *model, device);
  reset_peak_memory(device);
  Generator gen(config.train.seed);
  const Tensor ids =
      randint(0, config.model.config.vocab_size, {config.train.batch_size, config.data.seq_len},
              gen)
          .to(device);
  {
    NoGradGuard no_grad;
    const LossOutput out = model->loss(ids, step_options(config).loss_weights);
    out.loss.data().item();  // waits for the device
  }
  return memory_report(device);
}

double SyntheticTraining::median_step_seconds(int64_t steps) {
  std::vector<double> times;
  for (int64_t i = 0; i < steps; ++i) {
    synchronize(device_);
    const auto t0 = std::chrono::steady_clock::now();
    step();
    synchronize(device_);
    times.push_back(seconds_since(t0));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace moegrad::train
