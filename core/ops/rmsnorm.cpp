#include "core/ops/rmsnorm.h"

#include "core/ops/dispatch.h"
#include "core/storage.h"

namespace moegrad {
namespace {

Shape row_shape(const Tensor& x) { return Shape(x.shape().begin(), x.shape().end() - 1); }

// rstd is a statistic: bf16 inputs keep it in f32, the precision the kernels compute in.
DType stat_dtype(const Tensor& x) { return x.dtype() == DType::BF16 ? DType::F32 : x.dtype(); }

void check_input_and_weight(const char* op, const Tensor& x, const Tensor& w) {
  check_defined(op, x, "input");
  check_defined(op, w, "weight");
  check_same_device(op, x, w);
  check_same_dtype(op, x, w);
  MOEGRAD_CHECK(x.dim() >= 1 && w.dim() == 1 && w.size(0) == x.size(-1), op,
                ": expected weight of shape [D] for input [..., D], got input ",
                shape_str(x.shape()), " and weight ", shape_str(w.shape()));
}

}  // namespace

RmsNormOutput rmsnorm_forward(const Tensor& x, const Tensor& w, double eps) {
  check_input_and_weight("rmsnorm", x, w);
  RmsNormOutput out{empty(x.shape(), x.dtype(), x.device()),
                    empty(row_shape(x), stat_dtype(x), x.device())};
  // The outputs exist: operand copies are workspace.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  MOEGRAD_DISPATCH(x.device(), "rmsnorm", rmsnorm_forward, out.y, out.rstd, x.contiguous(),
                   w.contiguous(), eps);
  return out;
}

RmsNormGrads rmsnorm_backward(const Tensor& grad, const Tensor& x, const Tensor& w,
                              const Tensor& rstd) {
  check_input_and_weight("rmsnorm_backward", x, w);
  check_defined("rmsnorm_backward", grad, "grad");
  check_defined("rmsnorm_backward", rstd, "rstd");
  check_same_dtype("rmsnorm_backward", grad, x);
  MOEGRAD_CHECK(rstd.dtype() == stat_dtype(x), "rmsnorm_backward: expected rstd of dtype ",
                dtype_name(stat_dtype(x)), " for input of dtype ", dtype_name(x.dtype()), ", got ",
                dtype_name(rstd.dtype()));
  check_same_device("rmsnorm_backward", grad, x);
  check_same_device("rmsnorm_backward", rstd, x);
  MOEGRAD_CHECK(grad.shape() == x.shape() && rstd.shape() == row_shape(x),
                "rmsnorm_backward: expected grad ", shape_str(x.shape()), " and rstd ",
                shape_str(row_shape(x)), ", got grad ", shape_str(grad.shape()), " and rstd ",
                shape_str(rstd.shape()));
  RmsNormGrads g{empty(x.shape(), x.dtype(), x.device()), empty(w.shape(), w.dtype(), w.device())};
  // Operand copies, dw's partial sums.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  MOEGRAD_DISPATCH(x.device(), "rmsnorm_backward", rmsnorm_backward, g.dx, g.dw,
                   grad.contiguous(), x.contiguous(), w.contiguous(), rstd.contiguous());
  return g;
}

}  // namespace moegrad
