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

void check_backward_operands(const char* op, const Tensor& grad, const Tensor& gate,
                             const Tensor& up) {
  check_defined(op, gate, "gate");
  check_operand(op, gate, up, "up");
  check_operand(op, gate, grad, "grad");
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
  check_backward_operands("swiglu_backward", grad, gate, up);
  if (!need_gate && !need_up) return {};
  Tensor d_gate = need_gate ? empty(gate.shape(), gate.dtype(), gate.device()) : Tensor();
  Tensor d_up = need_up ? empty(gate.shape(), gate.dtype(), gate.device()) : Tensor();
  MOEGRAD_DISPATCH(gate.device(), "swiglu_backward", swiglu_backward, d_gate, d_up, grad, gate, up);
  return {d_gate, d_up};
}

Tensor swiglu_backward_joined(const Tensor& grad, const Tensor& gate, const Tensor& up) {
  check_backward_operands("swiglu_backward_joined", grad, gate, up);
  MOEGRAD_CHECK(gate.dim() >= 1, "swiglu_backward_joined: gate and up must have a last dim, got ",
                shape_str(gate.shape()));
  Shape shape = gate.shape();
  const int64_t d = shape.back();
  shape.back() = 2 * d;
  Tensor joined = empty(shape, gate.dtype(), gate.device());
  MOEGRAD_DISPATCH(gate.device(), "swiglu_backward", swiglu_backward, joined.narrow(-1, 0, d),
                   joined.narrow(-1, d, d), grad, gate, up);
  return joined;
}

}  // namespace moegrad
