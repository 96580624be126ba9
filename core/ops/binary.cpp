#include "core/ops/binary.h"

#include "core/ops/dispatch.h"

namespace moegrad {
namespace {

void check_operands(const char* op, const Tensor& a, const Tensor& b) {
  check_defined(op, a, "first");
  check_defined(op, b, "second");
  check_same_device(op, a, b);
  check_same_dtype(op, a, b);
}

}  // namespace

const char* binary_op_name(BinaryOp op) {
  static const char* const names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"};
  return names[int(op)];
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  check_operands("binary", a, b);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), "binary");
  Tensor out = empty(shape, a.dtype(), a.device());
  MOEGRAD_DISPATCH(a.device(), binary_op_name(op), binary, op, out, a.expand(shape),
                   b.expand(shape));
  return out;
}

void binary_(BinaryOp op, const Tensor& dst, const Tensor& src) {
  check_operands("binary_", dst, src);
  Shape shape = broadcast_shapes(dst.shape(), src.shape(), "binary_");
  MOEGRAD_CHECK(shape == dst.shape(), "binary_: in-place result of shape ", shape_str(shape),
                " does not fit destination ", shape_str(dst.shape()));
  MOEGRAD_DISPATCH(dst.device(), binary_op_name(op), binary, op, dst, dst, src.expand(shape));
}

}  // namespace moegrad
