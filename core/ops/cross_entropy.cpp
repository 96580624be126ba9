#include "core/ops/cross_entropy.h"

#include <vector>

#include "core/ops/dispatch.h"
#include "core/storage.h"

namespace moegrad {
namespace {

// The dtype of the loss and of the saved logsumexp: the logits' compute dtype, f32 for bf16
// logits (losses are kept in f32 under mixed precision).
DType loss_dtype(DType logits) { return logits == DType::BF16 ? DType::F32 : logits; }

// Row-major with unit stride along V: the kernels walk rows with stride(0).
Tensor unit_inner_stride(const Tensor& t) { return t.stride(-1) == 1 ? t : t.contiguous(); }

void check_logits_and_targets(const char* op, const Tensor& logits, const Tensor& targets,
                              int64_t ignore_index, IndexBounds bounds) {
  check_defined(op, logits, "logits");
  check_defined(op, targets, "targets");
  check_same_device(op, logits, targets);
  MOEGRAD_CHECK(is_integral(targets.dtype()), op, ": expected int32 or int64 targets, got ",
                dtype_name(targets.dtype()));
  MOEGRAD_CHECK(logits.dim() == 2 && targets.dim() == 1 && targets.size(0) == logits.size(0),
                op, ": expected logits [N, V] and targets [N], got logits ",
                shape_str(logits.shape()), " and targets ", shape_str(targets.shape()));
  if (bounds == IndexBounds::Trusted) return;
  const int64_t V = logits.size(1);
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // the targets' host copy
  // On a GPU this copies the targets to the host and waits: one sync per call buys the message
  // naming the row, and keeps an out-of-range target from ever reaching a kernel.
  dispatch_index(targets.dtype(), op, [&](auto tag) {
    using I = typename decltype(tag)::type;
    std::vector<I> tv = targets.to_vector<I>();
    for (size_t n = 0; n < tv.size(); ++n) {
      const int64_t t = int64_t(tv[n]);
      MOEGRAD_CHECK(t == ignore_index || (t >= 0 && t < V), op, ": target ", t, " of row ", n,
                    " is out of range for ", V, " classes (and is not ignore_index ",
                    ignore_index, ")");
    }
  });
}

}  // namespace

CrossEntropyOutput cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                         int64_t ignore_index, Reduction reduction) {
  check_logits_and_targets("cross_entropy", logits, targets, ignore_index, IndexBounds::Checked);
  const DType dt = loss_dtype(logits.dtype());
  CrossEntropyOutput out{empty({}, dt, logits.device()),
                         empty({logits.size(0)}, dt, logits.device())};
  // The outputs exist: operand copies and the per-row losses are workspace.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  MOEGRAD_DISPATCH(logits.device(), "cross_entropy", cross_entropy_forward, out.loss, out.lse,
                   unit_inner_stride(logits), targets.contiguous(), ignore_index, reduction);
  return out;
}

namespace {

void backward_into(const char* op, const Tensor& dlogits, const Tensor& grad, const Tensor& logits,
                   const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                   Reduction reduction, IndexBounds bounds) {
  check_logits_and_targets(op, logits, targets, ignore_index, bounds);
  check_defined(op, grad, "grad");
  check_defined(op, lse, "lse");
  MOEGRAD_CHECK(grad.dtype() == loss_dtype(logits.dtype()), op, ": expected a ",
                dtype_name(loss_dtype(logits.dtype())), " grad for ", dtype_name(logits.dtype()),
                " logits, got ", dtype_name(grad.dtype()));
  check_same_dtype(op, lse, grad);
  check_same_device(op, grad, logits);
  check_same_device(op, lse, logits);
  MOEGRAD_CHECK(grad.numel() == 1 && lse.shape() == Shape{logits.size(0)}, op,
                ": expected a one-element grad and lse [", logits.size(0), "], got grad ",
                shape_str(grad.shape()), " and lse ", shape_str(lse.shape()));
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // operand copies, the loss scale
  MOEGRAD_DISPATCH(logits.device(), op, cross_entropy_backward, dlogits, grad,
                   unit_inner_stride(logits), targets.contiguous(), lse.contiguous(), ignore_index,
                   reduction);
}

}  // namespace

Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& targets,
                              const Tensor& lse, int64_t ignore_index, Reduction reduction,
                              IndexBounds bounds) {
  check_defined("cross_entropy_backward", logits, "logits");
  Tensor dlogits = empty(logits.shape(), logits.dtype(), logits.device());
  backward_into("cross_entropy_backward", dlogits, grad, logits, targets, lse, ignore_index,
                reduction, bounds);
  return dlogits;
}

Tensor cross_entropy_backward_(const Tensor& grad, const Tensor& logits, const Tensor& targets,
                               const Tensor& lse, int64_t ignore_index, Reduction reduction,
                               IndexBounds bounds) {
  const char* op = "cross_entropy_backward_";
  check_defined(op, logits, "logits");
  MOEGRAD_CHECK(logits.is_contiguous(), op, ": the logits it writes over must be contiguous, got ",
                shape_str(logits.shape()), " with strides ", shape_str(logits.strides()));
  backward_into(op, logits, grad, logits, targets, lse, ignore_index, reduction, bounds);
  return logits;
}

}  // namespace moegrad
