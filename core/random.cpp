#include "core/random.h"

#include <cmath>
#include <vector>

namespace moegrad {
namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;
constexpr double kInv2Pow32 = 1.0 / 4294967296.0;

// Each value is computed in double and stored converted to `dtype` as Tensor::to converts, in
// one pass: no double-precision copy of a model-sized draw is ever made.
template <typename F>
Tensor draw(const Shape& shape, Generator& gen, DType dtype, F&& value_at) {
  const int64_t n = shape_numel(shape);
  const uint64_t base = gen.advance(uint64_t(n));
  const uint64_t key = gen.seed();
  Tensor out = empty(shape, dtype);
  dispatch_all(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = out.data<T>();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i)
      p[i] = convert_value<T>(value_at(philox4x32_10(base + uint64_t(i), key)));
  });
  return out;
}

}  // namespace

Tensor randn(const Shape& shape, Generator& gen, DType dtype, Device device) {
  MOEGRAD_CHECK(is_floating(dtype), "randn: expected a float dtype, got ", dtype_name(dtype));
  // Box-Muller on two 32-bit words; u1 in (0, 1] keeps log finite.
  return draw(shape, gen, dtype, [](const std::array<uint32_t, 4>& w) {
           double u1 = (double(w[0]) + 1.0) * kInv2Pow32;
           double u2 = double(w[1]) * kInv2Pow32;
           return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
         })
      .to(device);
}

Tensor rand(const Shape& shape, Generator& gen, DType dtype, Device device) {
  MOEGRAD_CHECK(is_floating(dtype), "rand: expected a float dtype, got ", dtype_name(dtype));
  // 24 random bits: every value is exact in f32, so no rounding can reach 1.0.
  return draw(shape, gen, dtype, [](const std::array<uint32_t, 4>& w) {
           return double(w[0] >> 8) * (1.0 / 16777216.0);
         })
      .to(device);
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, DType dtype,
               Device device) {
  MOEGRAD_CHECK(high > low, "randint: empty range [", low, ", ", high, ")");
  MOEGRAD_CHECK(is_integral(dtype), "randint: expected an integer dtype, got ", dtype_name(dtype));
  uint64_t range = uint64_t(high - low);
  int64_t n = shape_numel(shape);
  uint64_t base = gen.advance(uint64_t(n));
  std::vector<int64_t> v(n);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    auto w = philox4x32_10(base + uint64_t(i), gen.seed());
    uint64_t bits = (uint64_t(w[0]) << 32) | w[1];
    v[i] = low + int64_t(bits % range);
  }
  return from_vector<int64_t>(v, shape).to(dtype).to(device);
}

}  // namespace moegrad
