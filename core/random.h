// Counter-based random numbers (Philox4x32-10): element i of a draw depends only on the seed
// and the generator's offset plus i, so the same seed gives the same numbers on any device and
// any thread count.
#pragma once
#include <array>
#include <cstdint>

#include "core/half.h"
#include "core/tensor.h"

namespace moegrad {

MOEGRAD_HD std::array<uint32_t, 4> philox4x32_10(uint64_t counter, uint64_t key) {
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = uint64_t(0xD2511F53u) * c0;
    uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {c0, c1, c2, c3};
}

// A seed and a position in its stream. Each draw of n numbers takes counters
// [offset, offset + n) and advances the offset by n.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves n counters and returns the first.
  uint64_t advance(uint64_t n) {
    uint64_t base = offset_;
    offset_ += n;
    return base;
  }

 private:
  uint64_t seed_ = 0;
  uint64_t offset_ = 0;
};

// Values are drawn on the host and copied to `device`, so a CUDA tensor holds exactly the
// numbers a CPU tensor would.
Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::F32,
             Device device = Device::cpu());
Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::F32,
            Device device = Device::cpu());  // uniform in [0, 1)
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen,
               DType dtype = DType::I64, Device device = Device::cpu());  // in [low, high)

}  // namespace moegrad
