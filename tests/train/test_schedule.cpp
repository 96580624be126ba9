#include <cmath>
#include <numbers>

#include "tests/testing.h"
#include "train/schedule.h"

namespace moegrad::train {
namespace {

using testing::expect_error;

ScheduleConfig config(ScheduleKind kind, int64_t warmup, int64_t total) {
  ScheduleConfig c;
  c.kind = kind;
  c.lr = 1e-3;
  c.warmup_steps = warmup;
  c.total_steps = total;
  c.validate();
  return c;
}

TEST(Schedule, CosineWithWarmupFromATenth) {
  // OLMo's CosWithWarmup with the paper's alpha_f 0.1 and warmup from 0.1 * lr.
  const ScheduleConfig c = config(ScheduleKind::Cosine, 10, 110);
  EXPECT_DOUBLE_EQ(learning_rate(c, 0), 1e-4);
  EXPECT_DOUBLE_EQ(learning_rate(c, 1), 1e-3 * (0.1 + 0.9 * 0.1));
  EXPECT_DOUBLE_EQ(learning_rate(c, 5), 5.5e-4);
  EXPECT_DOUBLE_EQ(learning_rate(c, 10), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(c, 60), 1e-4 + 9e-4 * 0.5);
  EXPECT_DOUBLE_EQ(learning_rate(c, 35), 1e-4 + 9e-4 * (1 + std::cos(std::numbers::pi / 4)) / 2);
  EXPECT_DOUBLE_EQ(learning_rate(c, 110), 1e-4);
  EXPECT_DOUBLE_EQ(learning_rate(c, 500), 1e-4);
  for (int64_t s = 10; s < 110; ++s) EXPECT_GE(learning_rate(c, s), learning_rate(c, s + 1)) << s;
}

TEST(Schedule, CosineWithoutWarmupAndCustomFractions) {
  ScheduleConfig c = config(ScheduleKind::Cosine, 0, 100);
  EXPECT_DOUBLE_EQ(learning_rate(c, 0), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(c, 50), 5.5e-4);
  c.warmup_steps = 4;
  c.warmup_start_fraction = 0.0;
  c.alpha_f = 0.0;
  EXPECT_DOUBLE_EQ(learning_rate(c, 0), 0.0);
  EXPECT_DOUBLE_EQ(learning_rate(c, 2), 5e-4);
  EXPECT_DOUBLE_EQ(learning_rate(c, 100), 0.0);
  // Warmup as long as training: the last step is already at the floor.
  const ScheduleConfig all = config(ScheduleKind::Cosine, 8, 8);
  EXPECT_DOUBLE_EQ(learning_rate(all, 7), 1e-3 * (0.1 + 0.9 * 7 / 8));
  EXPECT_DOUBLE_EQ(learning_rate(all, 8), 1e-4);
}

TEST(Schedule, Constant) {
  const ScheduleConfig c = config(ScheduleKind::Constant, 0, 0);
  EXPECT_DOUBLE_EQ(learning_rate(c, 0), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(c, 123456), 1e-3);
  const ScheduleConfig w = config(ScheduleKind::Constant, 4, 0);
  EXPECT_DOUBLE_EQ(learning_rate(w, 0), 1e-4);
  EXPECT_DOUBLE_EQ(learning_rate(w, 2), 5.5e-4);
  EXPECT_DOUBLE_EQ(learning_rate(w, 4), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(w, 1000), 1e-3);
}

TEST(Schedule, WarmupStableDecayIsLinear) {
  ScheduleConfig c = config(ScheduleKind::Wsd, 10, 100);
  c.decay_fraction = 0.2;
  c.validate();
  EXPECT_EQ(c.decay_steps(), 20);
  EXPECT_DOUBLE_EQ(learning_rate(c, 5), 5.5e-4);
  EXPECT_DOUBLE_EQ(learning_rate(c, 10), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(c, 79), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(c, 80), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(c, 90), 1e-4 + 9e-4 * 0.5);
  EXPECT_DOUBLE_EQ(learning_rate(c, 95), 1e-4 + 9e-4 * 0.25);
  EXPECT_DOUBLE_EQ(learning_rate(c, 100), 1e-4);
  EXPECT_DOUBLE_EQ(learning_rate(c, 101), 1e-4);
  c.decay_fraction = 0.0;
  EXPECT_DOUBLE_EQ(learning_rate(c, 100), 1e-3);
}

TEST(Schedule, DecayStepsRoundHalfToEvenAsPython) {
  ScheduleConfig c = config(ScheduleKind::Wsd, 0, 10);
  c.decay_fraction = 0.25;  // 2.5 -> 2
  EXPECT_EQ(c.decay_steps(), 2);
  c.total_steps = 14;  // 3.5 -> 4
  EXPECT_EQ(c.decay_steps(), 4);
}

TEST(Schedule, ParseKind) {
  EXPECT_EQ(parse_schedule_kind("constant"), ScheduleKind::Constant);
  EXPECT_EQ(parse_schedule_kind("cosine"), ScheduleKind::Cosine);
  EXPECT_EQ(parse_schedule_kind("wsd"), ScheduleKind::Wsd);
  EXPECT_STREQ(schedule_kind_name(ScheduleKind::Wsd), "wsd");
  expect_error([] { parse_schedule_kind("cos"); },
               "schedule: unknown kind 'cos' (expected constant, cosine or wsd)");
}

TEST(Schedule, ValidationNamesTheField) {
  auto bad = [](auto edit) {
    ScheduleConfig c;
    c.total_steps = 100;
    c.warmup_steps = 10;
    edit(c);
    return testing::error_of([&] { c.validate(); });
  };
  EXPECT_EQ(bad([](ScheduleConfig&) {}), "no error");
  EXPECT_EQ(bad([](ScheduleConfig& c) { c.warmup_steps = 200; }),
            "schedule: warmup_steps 200 exceeds total_steps 100");
  EXPECT_EQ(bad([](ScheduleConfig& c) {
              c.total_steps = 0;
              c.warmup_steps = 0;
            }),
            "schedule: cosine needs total_steps >= 1, got 0");
  EXPECT_EQ(bad([](ScheduleConfig& c) { c.lr = 0; }), "schedule: lr must be finite and > 0, got 0");
  EXPECT_EQ(bad([](ScheduleConfig& c) { c.warmup_steps = -1; }),
            "schedule: warmup_steps must be >= 0, got -1");
  EXPECT_EQ(bad([](ScheduleConfig& c) { c.warmup_start_fraction = 1.5; }),
            "schedule: warmup_start_fraction must lie in [0, 1], got 1.5");
  EXPECT_EQ(bad([](ScheduleConfig& c) { c.alpha_f = -0.1; }),
            "schedule: alpha_f must lie in [0, 1], got -0.1");
  EXPECT_EQ(bad([](ScheduleConfig& c) {
              c.kind = ScheduleKind::Wsd;
              c.decay_fraction = 0.95;
            }),
            "schedule: warmup_steps 10 and decay_steps 95 (decay_fraction 0.95) exceed "
            "total_steps 100");
  EXPECT_EQ(bad([](ScheduleConfig& c) {
              c.kind = ScheduleKind::Wsd;
              c.decay_fraction = 2;
            }),
            "schedule: decay_fraction must lie in [0, 1], got 2");
  // constant needs no total.
  EXPECT_EQ(bad([](ScheduleConfig& c) {
              c.kind = ScheduleKind::Constant;
              c.total_steps = 0;
            }),
            "no error");
}

}  // namespace
}  // namespace moegrad::train
