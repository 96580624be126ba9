// Rotary position embedding in the NeoX "half" layout (HF's rotate_half, not interleaved):
// for i < D/2 and angle a = pos * inv_freq[i], inv_freq[i] = theta^(-2i/D),
//   out[i]       = x[i] cos a - x[i + D/2] sin a
//   out[i + D/2] = x[i + D/2] cos a + x[i] sin a
// i.e. x * cos + rotate_half(x) * sin with rotate_half(x) = cat(-x[D/2:], x[:D/2]).
#pragma once
#include "core/tensor.h"

namespace moegrad {

struct RopeTables {
  Tensor cos;  // [T, D/2]
  Tensor sin;  // [T, D/2]
};

// Tables for positions 0..T-1, or for `positions` (int32/int64 [T]) when defined, in `dtype` on
// the CPU. HF rounds inv_freq and the angles to f32 whatever the model dtype; the same rounding
// here (then cos/sin in f64) makes f32 and f64 results agree with HF to the last bits.
RopeTables rope_tables(int64_t T, int64_t D, double theta, const Tensor& positions, DType dtype);

// x: [..., T, D] with D even, any strides, f32, f64 or bf16; the result is laid out in memory
// as x is (empty_like_layout), in x's dtype (bf16 rotates in f32 by f32 tables and rounds once). The tables of the default
// positions are made once per (T, D, theta, dtype, device) and kept (the last 8).
Tensor rope(const Tensor& x, double theta, const Tensor& positions = Tensor());
// The inverse rotation (angle -a): the gradient of rope with respect to x.
Tensor rope_backward(const Tensor& grad, double theta, const Tensor& positions = Tensor());

// Backends. out and x [..., T, D], any strides; cos/sin [T, D/2] contiguous on x's
// device, in x's compute dtype (f32 for bf16 x); inverse rotates by -a.
namespace cpu {
void rope(const Tensor& out, const Tensor& x, const Tensor& cos, const Tensor& sin, bool inverse);
}  // namespace cpu
namespace cuda {
void rope(const Tensor& out, const Tensor& x, const Tensor& cos, const Tensor& sin, bool inverse);
}  // namespace cuda

}  // namespace moegrad
