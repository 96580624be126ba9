#include "core/ops/softmax.h"

#include <algorithm>

#include "core/ops/dispatch.h"
#include "core/storage.h"

namespace moegrad {
namespace {

void check_float(const char* op, const Tensor& t, const char* what) {
  check_defined(op, t, what);
  const DType d = t.dtype();
  MOEGRAD_CHECK(d == DType::F32 || d == DType::F64 || d == DType::BF16, op,
                ": expected a float32, float64 or bfloat16 ", what, ", got ", dtype_name(d));
}

// The shape [outer, D, inner] that splits `shape` around `dim` (a 0-d tensor is one element).
Shape split_at(const Shape& shape, int64_t dim, const char* op) {
  int64_t d = normalize_dim(dim, std::max<int64_t>(int64_t(shape.size()), 1), op);
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < int64_t(shape.size()); ++k) {
    if (k < d) outer *= shape[k];
    if (k > d) inner *= shape[k];
  }
  return {outer, shape.empty() ? 1 : shape[d], inner};
}

Tensor forward(const char* op, const Tensor& x, int64_t dim, bool log) {
  check_float(op, x, "input");
  Shape s3 = split_at(x.shape(), dim, op);
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  if (x.numel() == 0) return out;
  // The output exists: the operands' copies are workspace.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  MOEGRAD_DISPATCH(x.device(), op, softmax, out.view(s3), x.contiguous().view(s3), log);
  return out;
}

Tensor backward(const char* op, const Tensor& grad, const Tensor& y, int64_t dim, bool log) {
  check_float(op, grad, "grad");
  check_float(op, y, "output");
  check_same_device(op, grad, y);
  check_same_dtype(op, grad, y);
  MOEGRAD_CHECK(grad.shape() == y.shape(), op, ": grad shape ", shape_str(grad.shape()),
                " differs from output shape ", shape_str(y.shape()));
  Shape s3 = split_at(y.shape(), dim, op);
  Tensor out = empty(y.shape(), y.dtype(), y.device());
  if (y.numel() == 0) return out;
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // operand copies
  MOEGRAD_DISPATCH(y.device(), op, softmax_backward, out.view(s3), grad.contiguous().view(s3),
                   y.contiguous().view(s3), log);
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return forward("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return forward("log_softmax", x, dim, true); }

Tensor softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim) {
  return backward("softmax_backward", grad, y, dim, false);
}
Tensor log_softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim) {
  return backward("log_softmax_backward", grad, y, dim, true);
}

}  // namespace moegrad
