// SwiGLU, h = silu(gate) * up, fused forward and backward: the MoE experts' activation on
// [tokens * top_k, intermediate] tensors. Unfused (silu, then mul) it makes two passes and the
// autograd graph keeps gate, silu(gate) and up alive; fused it is one pass each way and the
// backward recomputes the sigmoid from gate, so only gate and up are saved.
#pragma once
#include <utility>

#include "core/tensor.h"

namespace moegrad {

// out = gate * sigmoid(gate) * up. gate and up: one shape (no broadcasting: the experts never
// need it, and a mismatch there is a bug), one float dtype (f32, f64 or bf16) and device, any
// strides. The output is contiguous, of their dtype; bf16 computes in f32 and rounds once.
// The sigmoid is silu's (core/ops/unary_op.h): f32 results agree with silu(gate) * up.
Tensor swiglu(const Tensor& gate, const Tensor& up);

// (d_gate, d_up) of swiglu for the output gradient `grad` (gate's shape, dtype and device), in
// one pass: with s = sigmoid(gate),
//   d_gate = grad * up * s * (1 + gate * (1 - s)),   d_up = grad * gate * s.
// A gradient not asked for (need_gate / need_up false) comes back undefined and costs nothing:
// the autograd rule skips inputs that do not require grad (a frozen expert weight's side).
std::pair<Tensor, Tensor> swiglu_backward(const Tensor& grad, const Tensor& gate, const Tensor& up,
                                          bool need_gate = true, bool need_up = true);

// The experts' weighted form, out = swiglu(gate, up) * scale with one scale a row: gate and up
// [R, D], scale [R, 1] (the routing weights), one dtype and device. One pass instead of swiglu
// and a mul, and an autograd rule can keep gate, up and the scale but not the [R, D] swiglu that
// the scale's gradient reads: the backward recomputes it. f32 and f64 results equal swiglu then
// mul bit for bit; bf16 rounds once.
Tensor swiglu_scaled(const Tensor& gate, const Tensor& up, const Tensor& scale);

// Its gradients for the output gradient grad [R, D]. gate_up: d_gate and d_up side by side in
// one [R, 2D] tensor, swiglu_backward's for grad * scale (the product not rounded to the storage
// type); the layout of gate and up projections run as one GEMM (the experts' joined [2I, H]
// weights), whose input gradient is then one GEMM too. scale: [R, 1], each row's sum of
// grad * swiglu(gate, up), summed in f64 and rounded once. Each only when asked (at least one).
struct SwigluScaledGrads {
  Tensor gate_up, scale;
};
SwigluScaledGrads swiglu_scaled_backward(const Tensor& grad, const Tensor& gate, const Tensor& up,
                                         const Tensor& scale, bool need_gate_up, bool need_scale);

// Backends: operands checked and of one shape; outputs preallocated. An undefined d_gate or
// d_up is not computed (at least one is defined). The scaled forms: gate, up and grad [R, D]
// with unit column stride, scale [R, 1]; out [R, D], d_gate_up [R, 2D] and d_scale [R, 1]
// contiguous, d_gate_up or d_scale undefined when not wanted (not both).
namespace cpu {
void swiglu(const Tensor& out, const Tensor& gate, const Tensor& up);
void swiglu_backward(const Tensor& d_gate, const Tensor& d_up, const Tensor& grad,
                     const Tensor& gate, const Tensor& up);
void swiglu_scaled(const Tensor& out, const Tensor& gate, const Tensor& up, const Tensor& scale);
void swiglu_scaled_backward(const Tensor& d_gate_up, const Tensor& d_scale, const Tensor& grad,
                            const Tensor& gate, const Tensor& up, const Tensor& scale);
}  // namespace cpu
namespace cuda {
void swiglu(const Tensor& out, const Tensor& gate, const Tensor& up);
void swiglu_backward(const Tensor& d_gate, const Tensor& d_up, const Tensor& grad,
                     const Tensor& gate, const Tensor& up);
void swiglu_scaled(const Tensor& out, const Tensor& gate, const Tensor& up, const Tensor& scale);
void swiglu_scaled_backward(const Tensor& d_gate_up, const Tensor& d_scale, const Tensor& grad,
                            const Tensor& gate, const Tensor& up, const Tensor& scale);
}  // namespace cuda

}  // namespace moegrad
