#include "core/staging_ring.h"

#include "core/error.h"

namespace moegrad {

StagingRing::StagingRing(size_t capacity, size_t alignment)
    : capacity_(capacity), alignment_(alignment) {
  MOEGRAD_CHECK(capacity > 0 && alignment > 0 && capacity % alignment == 0, "StagingRing: capacity ",
                capacity, " must be a positive multiple of the alignment ", alignment);
}

StagingRing::Placement StagingRing::place(size_t nbytes, int64_t ticket) {
  MOEGRAD_CHECK(nbytes >= 1 && nbytes <= capacity_, "StagingRing: ", nbytes,
                " bytes do not fit a ring of ", capacity_);
  MOEGRAD_CHECK(ticket > last_ticket_, "StagingRing: ticket ", ticket, " after ticket ",
                last_ticket_);
  last_ticket_ = ticket;
  uint64_t begin = (head_ + alignment_ - 1) / alignment_ * alignment_;
  if (begin % capacity_ + nbytes > capacity_) begin = (begin / capacity_ + 1) * capacity_;
  const uint64_t end = begin + nbytes;
  // The bytes of [begin, end) last held positions [begin, end) - capacity: every region that
  // starts before that range ends may still be read by its upload. Regions are in increasing
  // position, so those are a prefix, and the newest of them is the one to wait for.
  int64_t wait_for = -1;
  while (!live_.empty() && live_.front().begin + capacity_ < end) {
    wait_for = live_.front().ticket;
    live_.pop_front();
  }
  live_.push_back({begin, ticket});
  head_ = end;
  return {size_t(begin % capacity_), wait_for};
}

}  // namespace moegrad
