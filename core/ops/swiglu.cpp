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

}  // namespace moegrad
