// The training benchmark of `moegrad bench --config`: full optimizer steps (forward, backward,
// AdamW over what the [freeze] rules train) of the config's model on random tokens, on
// train.device, against the GEMM rate of that device in the run's precision (f32 or bf16)
// measured in the same run.
#pragma once
#include <cstdint>
#include <memory>

#include "core/device.h"
#include "core/random.h"
#include "core/storage.h"
#include "moe/olmoe.h"
#include "nn/olmoe_config.h"
#include "train/adamw.h"
#include "train/config.h"
#include "train/train_step.h"

namespace moegrad::train {

// Model FLOPs of one token of a training step: 6 x (active parameters: everything but the
// embedding, with k of the E experts) plus attention's QK^T and AV, forward and backward,
// counted over the whole T x T square as PaLM's MFU does: 12 x layers x T x hidden.
double training_flops_per_token(const OlmoeConfig& config, int64_t seq_len);
int64_t active_parameters(const OlmoeConfig& config);

struct BenchmarkResult {
  int64_t steps = 0;
  int64_t tokens_per_step = 0;
  double seconds_per_step = 0;  // median of the timed steps
  double tokens_per_s = 0;
  double gflops = 0;       // achieved model GFLOP/s
  double gemm_gflops = 0;  // GEMM rate in the run's precision on this machine, same run
  MemoryReport memory;     // the device's, peaks over the steps (warmup included)
  // Over the timed steps, on a CUDA device (0 on the CPU): blocks the caching allocator asked
  // of the driver and cache releases (a steady loop needs none), and host waits for the device
  // (the benchmark's own two a step included).
  int64_t driver_allocations = 0;
  int64_t cache_releases = 0;
  int64_t host_waits = 0;
  double gemm_ratio() const { return gemm_gflops > 0 ? gflops / gemm_gflops : 0.0; }
};

// The benchmark's training: the config's new model on train.device under its [freeze] rules,
// its AdamW, and fresh random tokens for each step (made under the profiler's data phase).
class SyntheticTraining {
 public:
  explicit SyntheticTraining(const TrainConfig& config);
  ~SyntheticTraining();
  void step();  // one full optimizer step: forward, backward, clipping, AdamW
  // Runs `steps` steps, each timed from an idle device to an idle device; their median.
  double median_step_seconds(int64_t steps);
  Device device() const { return device_; }
  int64_t tokens_per_step() const { return config_.tokens_per_step(); }
  const OlmoeForCausalLM& model() const { return *model_; }

 private:
  const TrainConfig& config_;
  Device device_;
  Generator data_gen_;
  std::unique_ptr<OlmoeForCausalLM> model_;
  std::unique_ptr<AdamW> optimizer_;
  StepOptions options_;
};

// warmup steps are run first and not timed.
BenchmarkResult run_training_benchmark(const TrainConfig& config, int64_t steps,
                                       int64_t warmup = 2);

// Peak memory of the config's new model (its precision, on train.device) running the forward
// and the loss of one micro-batch (batch_size x seq_len random tokens) without gradients: the
// inference memory a training run's peak is compared with. Run it with no other model alive.
MemoryReport inference_memory(const TrainConfig& config);

// Best rate of an n x n x n matmul of `dtype` (f32, or bf16 with f32 accumulation) on `device`
// (moegrad's, i.e. the BLAS or cuBLAS it calls), in GFLOP/s.
double measure_gemm_gflops(Device device, DType dtype, int64_t n = 1024, int repeats = 5);

}  // namespace moegrad::train
