#include <random>
#include <vector>

#include "core/staging_ring.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

TEST(StagingRing, FillsTheBufferThenWaitsForWhatItOverwrites) {
  StagingRing ring(1024, 256);
  for (int64_t t = 0; t < 4; ++t) {
    const StagingRing::Placement p = ring.place(256, t);
    EXPECT_EQ(p.offset, size_t(256 * t));
    EXPECT_EQ(p.wait_for, -1);
  }
  EXPECT_EQ(ring.place(256, 4).offset, 0u);   // ticket 0's bytes
  EXPECT_EQ(ring.live(), 4u);
  const StagingRing::Placement p5 = ring.place(300, 5);  // [256, 556): tickets 1 and 2
  EXPECT_EQ(p5.offset, 256u);
  EXPECT_EQ(p5.wait_for, 2);
  // From 768 (aligned up from 556) 300 bytes would run past the end: they start at 0 and
  // overlap tickets 4 and 5, which retires 3 too.
  const StagingRing::Placement p6 = ring.place(300, 6);
  EXPECT_EQ(p6.offset, 0u);
  EXPECT_EQ(p6.wait_for, 5);
  EXPECT_EQ(ring.live(), 1u);
  // A whole-buffer upload waits for the newest.
  EXPECT_EQ(ring.place(1024, 7).wait_for, 6);
  EXPECT_EQ(ring.place(1, 8).wait_for, 7);
}

// Uploads complete in ticket order, so after waiting for ticket w every ticket <= w is done:
// a new region must never overlap a region whose ticket is still in flight, and the first wait
// comes only when the buffer's first lap is full.
TEST(StagingRing, NeverOverwritesAnUploadInFlight) {
  struct Placed {
    size_t begin, end;
    int64_t ticket;
  };
  std::mt19937_64 rng(7);
  for (size_t alignment : {size_t(1), size_t(64)}) {
    StagingRing ring(4096, alignment);
    std::vector<Placed> placed;
    int64_t done_through = -1;
    size_t last_end = 0;
    for (int64_t t = 0; t < 5000; ++t) {
      const size_t n = 1 + rng() % (t % 50 == 49 ? 4096 : 700);
      const StagingRing::Placement p = ring.place(n, t);
      ASSERT_LE(p.offset + n, ring.capacity());
      ASSERT_EQ(p.offset % alignment, 0u);
      if (p.wait_for >= 0) {
        ASSERT_GT(p.wait_for, done_through);
        if (done_through < 0) {
          EXPECT_EQ(p.offset, 0u);
          EXPECT_GT((last_end + alignment - 1) / alignment * alignment + n, ring.capacity());
        }
        done_through = p.wait_for;
      }
      last_end = p.offset + n;
      for (const Placed& q : placed) {
        const bool overlaps = q.begin < p.offset + n && p.offset < q.end;
        ASSERT_FALSE(q.ticket > done_through && overlaps)
            << "ticket " << t << " overwrites ticket " << q.ticket << " in flight";
      }
      placed.push_back({p.offset, p.offset + n, t});
    }
    EXPECT_GT(done_through, 4000);  // it does wait, and retires what it waited for
  }
}

TEST(StagingRing, RejectsWhatCannotBePlaced) {
  testing::expect_error([] { StagingRing(1000, 256); }, "multiple of the alignment");
  StagingRing ring(1024, 256);
  testing::expect_error([&] { ring.place(0, 0); }, "do not fit");
  testing::expect_error([&] { ring.place(1025, 0); }, "do not fit");
  ring.place(10, 3);
  testing::expect_error([&] { ring.place(10, 3); }, "after ticket 3");
}

}  // namespace
}  // namespace moegrad
