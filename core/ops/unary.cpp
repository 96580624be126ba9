#include "core/ops/unary.h"

#include "core/ops/dispatch.h"

namespace moegrad {

const char* unary_op_name(UnaryOp op) {
  static const char* const names[] = {"neg",  "exp",    "log",        "sqrt", "rsqrt",
                                      "abs",  "sign",   "square",     "reciprocal", "tanh",
                                      "sigmoid", "silu", "relu",      "gelu"};
  return names[int(op)];
}

const char* scalar_op_name(ScalarOp op) {
  static const char* const names[] = {"add_scalar", "mul_scalar", "rsub_scalar",
                                      "rdiv_scalar", "pow_scalar", "clamp"};
  return names[int(op)];
}

Tensor unary(UnaryOp op, const Tensor& x) {
  check_defined("unary", x, "input");
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  MOEGRAD_DISPATCH(x.device(), unary_op_name(op), unary, op, out, x);
  return out;
}

Tensor activation_backward(ActivationGrad op, const Tensor& grad, const Tensor& x) {
  check_defined("activation_backward", grad, "grad");
  check_defined("activation_backward", x, "input");
  check_same_device("activation_backward", grad, x);
  check_same_dtype("activation_backward", grad, x);
  MOEGRAD_CHECK(grad.shape() == x.shape(), "activation_backward: grad shape ",
                shape_str(grad.shape()), " differs from input shape ", shape_str(x.shape()));
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  MOEGRAD_DISPATCH(x.device(), "activation_backward", activation_backward, op, out, grad, x);
  return out;
}

Tensor scalar_op(ScalarOp op, const Tensor& x, double a, double b) {
  check_defined("scalar_op", x, "input");
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  MOEGRAD_DISPATCH(x.device(), scalar_op_name(op), scalar_op, op, out, x, a, b);
  return out;
}

}  // namespace moegrad
