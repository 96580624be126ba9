#include "train/schedule.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace moegrad::train {

ScheduleKind parse_schedule_kind(const std::string& name) {
  if (name == "constant") return ScheduleKind::Constant;
  if (name == "cosine") return ScheduleKind::Cosine;
  if (name == "wsd") return ScheduleKind::Wsd;
  throw Error("schedule: unknown kind '" + name + "' (expected constant, cosine or wsd)");
}

const char* schedule_kind_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::Constant:
      return "constant";
    case ScheduleKind::Cosine:
      return "cosine";
    case ScheduleKind::Wsd:
      return "wsd";
  }
  return "";
}

void ScheduleConfig::validate() const {
  MOEGRAD_CHECK(std::isfinite(lr) && lr > 0, "schedule: lr must be finite and > 0, got ", lr);
  MOEGRAD_CHECK(warmup_steps >= 0, "schedule: warmup_steps must be >= 0, got ", warmup_steps);
  MOEGRAD_CHECK(warmup_start_fraction >= 0 && warmup_start_fraction <= 1,
                "schedule: warmup_start_fraction must lie in [0, 1], got ", warmup_start_fraction);
  if (kind == ScheduleKind::Constant) return;
  MOEGRAD_CHECK(total_steps >= 1, "schedule: ", schedule_kind_name(kind),
                " needs total_steps >= 1, got ", total_steps);
  MOEGRAD_CHECK(warmup_steps <= total_steps, "schedule: warmup_steps ", warmup_steps,
                " exceeds total_steps ", total_steps);
  MOEGRAD_CHECK(alpha_f >= 0 && alpha_f <= 1, "schedule: alpha_f must lie in [0, 1], got ",
                alpha_f);
  if (kind != ScheduleKind::Wsd) return;
  MOEGRAD_CHECK(decay_fraction >= 0 && decay_fraction <= 1,
                "schedule: decay_fraction must lie in [0, 1], got ", decay_fraction);
  MOEGRAD_CHECK(warmup_steps + decay_steps() <= total_steps, "schedule: warmup_steps ",
                warmup_steps, " and decay_steps ", decay_steps(), " (decay_fraction ",
                decay_fraction, ") exceed total_steps ", total_steps);
}

int64_t ScheduleConfig::decay_steps() const {
  return int64_t(std::nearbyint(decay_fraction * double(total_steps)));
}

double learning_rate(const ScheduleConfig& c, int64_t step) {
  const int64_t w = c.warmup_steps, t = c.total_steps;
  if (step < w) {
    const double f = c.warmup_start_fraction;
    return c.lr * (f + (1 - f) * double(step) / double(w));
  }
  const double lr_min = c.alpha_f * c.lr;
  switch (c.kind) {
    case ScheduleKind::Constant:
      return c.lr;
    case ScheduleKind::Cosine:
      if (step >= t) return lr_min;
      return lr_min + (c.lr - lr_min) *
                          (1 + std::cos(std::numbers::pi * double(step - w) / double(t - w))) / 2;
    case ScheduleKind::Wsd: {
      const int64_t d = c.decay_steps();
      if (step >= t) return d == 0 ? c.lr : lr_min;
      if (step < t - d) return c.lr;
      return lr_min + (c.lr - lr_min) * double(t - step) / double(d);
    }
  }
  return c.lr;
}

}  // namespace moegrad::train
