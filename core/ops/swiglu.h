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

// Both gradients of swiglu as one [..., 2 * D] tensor for gate and up [..., D]: d_gate, then
// d_up, along the last dim. The layout of gate and up projections run as one GEMM (the
// experts' joined [2 * I, H] weights), whose input gradient is then one GEMM too.
Tensor swiglu_backward_joined(const Tensor& grad, const Tensor& gate, const Tensor& up);

// Backends: operands checked and of one shape; outputs preallocated. An undefined d_gate or
// d_up is not computed (at least one is defined).
namespace cpu {
void swiglu(const Tensor& out, const Tensor& gate, const Tensor& up);
void swiglu_backward(const Tensor& d_gate, const Tensor& d_up, const Tensor& grad,
                     const Tensor& gate, const Tensor& up);
}  // namespace cpu
namespace cuda {
void swiglu(const Tensor& out, const Tensor& gate, const Tensor& up);
void swiglu_backward(const Tensor& d_gate, const Tensor& d_up, const Tensor& grad,
                     const Tensor& gate, const Tensor& up);
}  // namespace cuda

}  // namespace moegrad
