// Element types of a tensor and the compile-time dispatch from a runtime dtype to a C++ type.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "core/half.h"

namespace moegrad {

enum class DType : uint8_t { F32, F64, BF16, F16, I32, I64, Bool };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
bool is_floating(DType t);
bool is_integral(DType t);  // i32, i64 (not bool)

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::BF16; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::F16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::I32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };
template <typename T> inline constexpr DType dtype_v = dtype_of<T>::value;

template <typename T> struct type_tag { using type = T; };

// Calls fn(type_tag<T>{}) for the C++ type of `t`, over every dtype.
template <typename Fn>
decltype(auto) dispatch_all(DType t, Fn&& fn) {
  switch (t) {
    case DType::F32: return fn(type_tag<float>{});
    case DType::F64: return fn(type_tag<double>{});
    case DType::BF16: return fn(type_tag<bf16>{});
    case DType::F16: return fn(type_tag<f16>{});
    case DType::I32: return fn(type_tag<int32_t>{});
    case DType::I64: return fn(type_tag<int64_t>{});
    case DType::Bool: return fn(type_tag<bool>{});
  }
  throw Error("dispatch_all: invalid dtype");
}

// The type a kernel computes in for elements stored as T: a bf16 value is widened to f32 when
// loaded and rounded once when stored (mixed precision: f32 arithmetic and accumulation on
// bf16 tensors); f32 and f64 compute in themselves.
template <typename T> struct compute_type { using type = T; };
template <> struct compute_type<bf16> { using type = float; };
template <typename T> using compute_t = typename compute_type<T>::type;

// The element types of the compute kernels: f32 (training), f64 (gradient checks) and bf16
// (mixed-precision training), each computing in compute_t<T>. f16 is a storage format only.
template <typename Fn>
decltype(auto) dispatch_compute(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::F32: return fn(type_tag<float>{});
    case DType::F64: return fn(type_tag<double>{});
    case DType::BF16: return fn(type_tag<bf16>{});
    default:
      throw Error(std::string(op) + ": expected a float32, float64 or bfloat16 tensor, got " +
                  dtype_name(t));
  }
}

// Kernels that have no bf16 form: f32 and f64 only.
template <typename Fn>
decltype(auto) dispatch_float(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::F32: return fn(type_tag<float>{});
    case DType::F64: return fn(type_tag<double>{});
    default:
      throw Error(std::string(op) + ": expected a float32 or float64 tensor, got " + dtype_name(t));
  }
}

template <typename Fn>
decltype(auto) dispatch_index(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::I32: return fn(type_tag<int32_t>{});
    case DType::I64: return fn(type_tag<int64_t>{});
    default:
      throw Error(std::string(op) + ": expected an int32 or int64 index tensor, got " + dtype_name(t));
  }
}

// A compute-dtype tensor (f32, f64, bf16) read with an index tensor (cross-entropy's logits
// and targets, say).
template <typename Fn>
decltype(auto) dispatch_float_index(DType f, DType i, const char* op, Fn&& fn) {
  return dispatch_compute(f, op, [&](auto ftag) {
    return dispatch_index(i, op, [&](auto itag) { return fn(ftag, itag); });
  });
}

// The dtypes a sum can be kept in: the compute floats (bf16 adding in f32) and the index
// integers (counts).
template <typename Fn>
decltype(auto) dispatch_summable(DType t, const char* op, Fn&& fn) {
  if (is_floating(t)) return dispatch_compute(t, op, fn);
  return dispatch_index(t, op, fn);
}

}  // namespace moegrad
