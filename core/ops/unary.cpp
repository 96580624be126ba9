#include "core/ops/unary.h"

#include "core/ops/dispatch.h"

namespace moegrad {

Tensor unary(UnaryOp op, const Tensor& x) {
  check_defined("unary", x, "input");
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  MOEGRAD_DISPATCH(x.device(), "unary", unary, op, out, x);
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
  MOEGRAD_DISPATCH(x.device(), "scalar_op", scalar_op, op, out, x, a, b);
  return out;
}

}  // namespace moegrad
