#include "core/ops/swiglu.h"

#include "core/ops/dispatch.h"

namespace moegrad {
namespace {

void check_operand(const char* op, const Tensor& gate, const Tensor& t, const char* what) {
  check_defined(op, t, what);
  check_same_device(op, gate, t);
  check_same_dtype(op, gate, t);
  MOEGRAD_CHECK(t.shape() == gate.shape(), op, ": ", what, " shape ", shape_str(t.shape()),
                " differs from gate shape ", shape_str(gate.shape()));
}

// The scaled forms' backends walk rows whose columns are contiguous.
Tensor unit_columns(const Tensor& t) {
  return t.size(1) <= 1 || t.stride(1) == 1 ? t : t.contiguous();
}

void check_scaled_operands(const char* op, const Tensor& gate, const Tensor& up,
                           const Tensor& scale) {
  check_defined(op, gate, "gate");
  check_operand(op, gate, up, "up");
  check_defined(op, scale, "scale");
  check_same_device(op, gate, scale);
  check_same_dtype(op, gate, scale);
  MOEGRAD_CHECK(gate.dim() == 2 && scale.shape() == Shape({gate.size(0), 1}), op, ": gate ",
                shape_str(gate.shape()), " and scale ", shape_str(scale.shape()),
                ": expected gate [R, D] and scale [R, 1]");
}

}  // namespace

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  check_defined("swiglu", gate, "gate");
  check_operand("swiglu", gate, up, "up");
  Tensor out = empty(gate.shape(), gate.dtype(), gate.device());
  MOEGRAD_DISPATCH(gate.device(), "swiglu", swiglu, out, gate, up);
  return out;
}

std::pair<Tensor, Tensor> swiglu_backward(const Tensor& grad, const Tensor& gate, const Tensor& up,
                                          bool need_gate, bool need_up) {
  check_defined("swiglu_backward", gate, "gate");
  check_operand("swiglu_backward", gate, up, "up");
  check_operand("swiglu_backward", gate, grad, "grad");
  if (!need_gate && !need_up) return {};
  Tensor d_gate = need_gate ? empty(gate.shape(), gate.dtype(), gate.device()) : Tensor();
  Tensor d_up = need_up ? empty(gate.shape(), gate.dtype(), gate.device()) : Tensor();
  MOEGRAD_DISPATCH(gate.device(), "swiglu_backward", swiglu_backward, d_gate, d_up, grad, gate, up);
  return {d_gate, d_up};
}

Tensor swiglu_scaled(const Tensor& gate, const Tensor& up, const Tensor& scale) {
  check_scaled_operands("swiglu_scaled", gate, up, scale);
  Tensor out = empty(gate.shape(), gate.dtype(), gate.device());
  if (out.numel() == 0) return out;
  MOEGRAD_DISPATCH(gate.device(), "swiglu_scaled", swiglu_scaled, out, unit_columns(gate),
                   unit_columns(up), scale);
  return out;
}

SwigluScaledGrads swiglu_scaled_backward(const Tensor& grad, const Tensor& gate, const Tensor& up,
                                         const Tensor& scale, bool need_gate_up, bool need_scale) {
  const char* op = "swiglu_scaled_backward";
  check_scaled_operands(op, gate, up, scale);
  check_operand(op, gate, grad, "grad");
  if (!need_gate_up && !need_scale) return {};
  const int64_t r = gate.size(0), d = gate.size(1);
  SwigluScaledGrads out;
  if (need_gate_up) out.gate_up = empty({r, 2 * d}, gate.dtype(), gate.device());
  if (need_scale) out.scale = empty({r, 1}, gate.dtype(), gate.device());
  if (r == 0) return out;
  MOEGRAD_DISPATCH(gate.device(), op, swiglu_scaled_backward, out.gate_up, out.scale,
                   unit_columns(grad), unit_columns(gate), unit_columns(up), scale);
  return out;
}

}  // namespace moegrad
