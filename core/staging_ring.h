// Where uploads go in a fixed host staging buffer that is reused as a ring, and which earlier
// upload must have finished before a region may be written again. Pure bookkeeping (no CUDA),
// so it is tested without a GPU; core/cuda/runtime.cpp pairs each ticket with an event.
//
// Uploads are tickets issued in increasing order that complete in that order (they run on one
// stream), so waiting for one ticket retires every older one too.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>

namespace moegrad {

class StagingRing {
 public:
  // capacity: the buffer's bytes; every region starts at a multiple of `alignment`.
  StagingRing(size_t capacity, size_t alignment);

  struct Placement {
    size_t offset;
    // The newest earlier ticket whose region this one overlaps: wait for it before writing
    // (it and every older ticket are then retired). -1: nothing to wait for.
    int64_t wait_for;
  };
  // Places `nbytes` (1 <= nbytes <= capacity) for upload `ticket` (greater than every earlier
  // ticket).
  Placement place(size_t nbytes, int64_t ticket);

  size_t capacity() const { return capacity_; }
  size_t live() const { return live_.size(); }  // placed regions not yet retired

 private:
  // Positions are virtual: they only grow, and position p lives at byte p % capacity. A region
  // never wraps around the end of the buffer.
  struct Region {
    uint64_t begin;
    int64_t ticket;
  };
  size_t capacity_, alignment_;
  uint64_t head_ = 0;
  int64_t last_ticket_ = -1;
  std::deque<Region> live_;  // oldest first, so in increasing position
};

}  // namespace moegrad
