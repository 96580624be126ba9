#include "core/ops/compare.h"

#include "core/ops/dispatch.h"

namespace moegrad {

Tensor compare(CompareOp op, const Tensor& a, const Tensor& b) {
  check_defined("compare", a, "first");
  check_defined("compare", b, "second");
  check_same_device("compare", a, b);
  check_same_dtype("compare", a, b);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), "compare");
  Tensor out = empty(shape, DType::Bool, a.device());
  MOEGRAD_DISPATCH(a.device(), "compare", compare, op, out, a.expand(shape), b.expand(shape));
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined("where", cond, "condition");
  check_defined("where", a, "first");
  check_defined("where", b, "second");
  MOEGRAD_CHECK(cond.dtype() == DType::Bool, "where: condition must be bool, got ",
                dtype_name(cond.dtype()));
  check_same_device("where", cond, a);
  check_same_device("where", a, b);
  check_same_dtype("where", a, b);
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = empty(shape, a.dtype(), a.device());
  MOEGRAD_DISPATCH(a.device(), "where", where, out, cond.expand(shape), a.expand(shape),
                   b.expand(shape));
  return out;
}

}  // namespace moegrad
