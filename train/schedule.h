// Learning-rate schedules as pure functions of the step, with OLMo's conventions (the paper
// trains with OLMo's CosWithWarmup and alpha_f 0.1; WSD is OLMo-core's, decaying linearly).
//
// learning_rate(c, s) is the rate of the s-th optimizer step: s counts from 1 (the first update
// uses s = 1), as OLMo's trainer passes its global step after incrementing it. With
// lr_min = alpha_f * lr and W = warmup_steps, T = total_steps:
//   warmup (every kind), s < W:  lr * (f + (1 - f) * s / W), f = warmup_start_fraction
//                                (OLMo's default start of 0.1 * lr)
//   constant:                    lr after the warmup, for any s
//   cosine, W <= s < T:          lr_min + (lr - lr_min) * (1 + cos(pi * (s - W) / (T - W))) / 2
//   wsd, W <= s < T - D:         lr, then for T - D <= s:
//                                lr_min + (lr - lr_min) * (T - s) / D,
//                                D = round-half-even(decay_fraction * T) as Python's round
//   cosine and wsd, s >= T:      lr_min (wsd with D = 0 never decays: lr)
#pragma once
#include <cstdint>
#include <string>

namespace moegrad::train {

enum class ScheduleKind { Constant, Cosine, Wsd };

// "constant", "cosine" or "wsd"; anything else is an error listing them.
ScheduleKind parse_schedule_kind(const std::string& name);
const char* schedule_kind_name(ScheduleKind kind);

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::Cosine;
  double lr = 1e-4;  // the peak
  int64_t warmup_steps = 0;
  double warmup_start_fraction = 0.1;  // the warmup starts from this fraction of lr
  int64_t total_steps = 0;             // cosine and wsd end here; constant ignores it
  double alpha_f = 0.1;                // cosine and wsd end at alpha_f * lr
  double decay_fraction = 0.1;         // wsd: the final part of total_steps that decays

  // Throws naming the first bad field, e.g. "schedule: warmup_steps 2000 exceeds total_steps
  // 1000".
  void validate() const;
  // decay_fraction * total_steps rounded half to even (wsd).
  int64_t decay_steps() const;
};

// The rate of optimizer step `step` (>= 0; see the file comment). Does not validate `c`.
double learning_rate(const ScheduleConfig& c, int64_t step);

}  // namespace moegrad::train
