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

// t seen at the broadcast `shape`: t itself when it has that shape already (most calls), else a
// view kept in `spare`. A view costs allocations, a noticeable part of a small op's host time.
const Tensor& expanded(const Tensor& t, const Shape& shape, Tensor& spare) {
  if (t.shape() == shape) return t;
  spare = t.expand(shape);
  return spare;
}

}  // namespace

const char* binary_op_name(BinaryOp op) {
  static const char* const names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"};
  return names[int(op)];
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  check_operands("binary", a, b);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), "binary");
  Tensor out = empty(shape, a.dtype(), a.device()), spare_a, spare_b;
  MOEGRAD_DISPATCH(a.device(), binary_op_name(op), binary, op, out, expanded(a, shape, spare_a),
                   expanded(b, shape, spare_b));
  return out;
}

void binary_(BinaryOp op, const Tensor& dst, const Tensor& src) {
  check_operands("binary_", dst, src);
  Shape shape = broadcast_shapes(dst.shape(), src.shape(), "binary_");
  MOEGRAD_CHECK(shape == dst.shape(), "binary_: in-place result of shape ", shape_str(shape),
                " does not fit destination ", shape_str(dst.shape()));
  Tensor spare;
  MOEGRAD_DISPATCH(dst.device(), binary_op_name(op), binary, op, dst, dst,
                   expanded(src, shape, spare));
}

}  // namespace moegrad
