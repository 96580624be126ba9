// bf16 and f16 storage types with round-to-nearest-even conversion from f32.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__CUDACC__)
#define MOEGRAD_HD __host__ __device__ inline
#else
#define MOEGRAD_HD inline
#endif

namespace moegrad {

MOEGRAD_HD uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  return __builtin_bit_cast(uint32_t, f);  // unlike memcpy, this keeps loops vectorisable
#endif
}

MOEGRAD_HD float f32_from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  return __builtin_bit_cast(float, u);
#endif
}

struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  MOEGRAD_HD explicit bf16(float f) : bits(from_float(f)) {}
  MOEGRAD_HD explicit operator float() const { return f32_from_bits(uint32_t(bits) << 16); }
  // Round to nearest, ties to even; NaN stays a (quiet) NaN instead of rounding into Inf.
  MOEGRAD_HD static uint16_t from_float(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
  }
};

struct f16 {
  uint16_t bits = 0;
  f16() = default;
  MOEGRAD_HD explicit f16(float f) : bits(from_float(f)) {}
  MOEGRAD_HD explicit operator float() const { return to_float(bits); }

  MOEGRAD_HD static uint16_t from_float(float f) {
    uint32_t u = f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
    if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to or past Inf
    if (a < 0x38800000u) {                                  // f16 subnormal or zero
      // Adding 0.5 (as f32) aligns the f16 subnormal grid with f32's integer
      // mantissa, so the FPU's own round-to-nearest-even does the rounding.
      float r = f32_from_bits(a) + 0.5f;
      return uint16_t(sign | (f32_bits(r) - 0x3f000000u));
    }
    uint32_t mant_odd = (a >> 13) & 1u;
    a += 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round to nearest even
    return uint16_t(sign | (a >> 13));
  }
  MOEGRAD_HD static float to_float(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
      // Subnormal: value = mant * 2^-24, exact in f32.
      float v = float(mant) * 5.9604644775390625e-8f;
      return sign ? -v : v;
    }
    return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
  }
};

// Converts between any two element types; the 16-bit floats go through float, the type
// their constructors and conversions take.
template <typename To, typename From>
MOEGRAD_HD To convert_value(From v) {
  constexpr bool from_half = std::is_same_v<From, bf16> || std::is_same_v<From, f16>;
  constexpr bool to_half = std::is_same_v<To, bf16> || std::is_same_v<To, f16>;
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (from_half) {
    return convert_value<To>(static_cast<float>(v));
  } else if constexpr (to_half) {
    return To(static_cast<float>(v));
  } else {
    return static_cast<To>(v);
  }
}

// An f64 value (a long sum) into a storage type, rounded once: bf16 goes through f32 rounded to
// odd (an inexact value keeps a sticky low bit), which bf16's round to nearest even then rounds
// as it would the f64 value. Both backends round their f64 sums with it.
template <typename T>
MOEGRAD_HD T round_from_f64(double v) {
  if constexpr (std::is_same_v<T, bf16>) {
    float f = float(v);
    if (double(f) != v) {
      uint32_t u = f32_bits(f);
      if ((f < 0 ? -double(f) : double(f)) > (v < 0 ? -v : v)) --u;  // toward zero, then odd
      f = f32_from_bits(u | 1u);
    }
    return bf16(f);
  } else {
    return T(v);
  }
}

}  // namespace moegrad
