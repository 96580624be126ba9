// Division by a divisor fixed ahead of time with a multiply-high and a shift (Granlund and
// Montgomery's method, as in CUTLASS and PyTorch). A GPU has no integer divide instruction: the
// 64-bit `/` and `%` that map a linear index to a strided offset, one per dimension, cost more
// than a strided kernel's memory traffic.
#pragma once
#include <cstdint>

#include "core/error.h"
#include "core/half.h"

namespace moegrad {

class FastDivmod {
 public:
  FastDivmod() = default;
  // 1 <= divisor < 2^31.
  explicit FastDivmod(int64_t divisor) : divisor_(uint32_t(divisor)) {
    MOEGRAD_CHECK(divisor >= 1 && divisor < (int64_t(1) << 31), "FastDivmod: divisor ", divisor,
                  " out of range [1, 2^31)");
    while ((uint64_t(1) << shift_) < uint64_t(divisor)) ++shift_;
    multiplier_ =
        uint32_t((uint64_t(1) << 32) * ((uint64_t(1) << shift_) - uint64_t(divisor)) /
                     uint64_t(divisor) +
                 1);
  }

  MOEGRAD_HD uint32_t divisor() const { return divisor_; }
  // n / divisor, for n < 2^31 (so the sum below stays within 32 bits).
  MOEGRAD_HD uint32_t div(uint32_t n) const { return (mulhi(n, multiplier_) + n) >> shift_; }

 private:
  MOEGRAD_HD static uint32_t mulhi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __umulhi(a, b);
#else
    return uint32_t((uint64_t(a) * b) >> 32);
#endif
  }

  uint32_t divisor_ = 1, multiplier_ = 1, shift_ = 0;
};

}  // namespace moegrad
