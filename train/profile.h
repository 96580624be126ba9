// `moegrad profile`: training steps of a config under the op-level profiler (core/profiler.h),
// and what is made of their events: tables by op, module and phase, the tokens and estimated
// time of each expert, memory by category, and a Chrome trace.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/profiler.h"
#include "core/storage.h"
#include "train/config.h"

namespace moegrad::train {

struct ProfileRun {
  Device device = Device::cpu();
  std::string precision = "f32";  // train.precision
  int64_t steps = 0;
  int64_t tokens_per_step = 0;
  double unprofiled_step_s = 0;  // median of as many steps with the profiler off, run in turn
  double profiled_step_s = 0;    // median of the profiled steps
  std::vector<profiler::Event> events;
  MemoryReport memory;     // the device's, over the whole run
  double peak_gflops = 0;  // GEMM rate of the device in the run's precision, same run
  double peak_gbps = 0;    // copy bandwidth of the device (bytes read + written), same run
};

// `warmup` unprofiled steps, then `steps` profiled ones (each inside a "step" event that ends
// when the device is idle) alternating with as many timed with the profiler off, on the
// config's new model with random tokens (SyntheticTraining).
ProfileRun run_profile(const TrainConfig& config, int64_t steps, int64_t warmup);

// Every number of a run: per step, the op time that accounts for the step and the remainder;
// "by_op", "by_module" (layer indices folded to *), "by_phase" rows {key, calls, ms_per_step,
// share, gflops, gbps, of_peak_gflops, of_peak_gbps} over the ops' (device) time;
// "phase_host_ms_per_step": each phase scope's host time (data loading has no ops); "shares"
// of the step in MoE layers (modules under .mlp), attention (.self_attn) and the rest; "experts" rows {module,
// expert, tokens, ms_per_step_estimated, gflops}: tokens are what the router chose, time is the
// module's grouped GEMM time split by tokens (one launch runs them all); "memory": for each
// category (weights, gradients, optimizer state, activations, workspace: the ops' scratch)
// {peak_bytes, at_peak_bytes} (its own high-water mark, its bytes when the total peaked), and
// peak_total_bytes.
nlohmann::json profile_summary(const ProfileRun& run);
// The summary as text tables, the first `top` rows of each.
std::string profile_table(const nlohmann::json& summary, size_t top = 20);
// Chrome trace JSON (Perfetto, chrome://tracing): complete events, one process for the host
// (a lane per thread) and one per GPU; a memory counter; expert tokens as instants.
nlohmann::json chrome_trace(const std::vector<profiler::Event>& events);

}  // namespace moegrad::train
