#include "core/ops/router_topk.h"

#include "core/ops/dispatch.h"
#include "core/storage.h"

namespace moegrad {
namespace {

void check_float(const Tensor& t, const char* what) {
  check_defined("router_topk", t, what);
  const DType d = t.dtype();
  MOEGRAD_CHECK(d == DType::F32 || d == DType::F64, "router_topk: expected float32 or float64 ",
                what, ", got ", dtype_name(d));
}

}  // namespace

RouterTopk router_topk(const Tensor& logits, int64_t k, bool normalize) {
  check_float(logits, "logits");
  MOEGRAD_CHECK(logits.dim() == 2, "router_topk: expected logits [N, E], got shape ",
                shape_str(logits.shape()));
  const int64_t n = logits.size(0), e = logits.size(1);
  MOEGRAD_CHECK(k >= 1 && k <= e, "router_topk: k = ", k, " out of range [1, ", e,
                "] for logits of shape ", shape_str(logits.shape()));
  const Device device = logits.device();
  RouterTopk r{empty({n, e}, logits.dtype(), device), empty({n, k}, logits.dtype(), device),
               empty({n, k}, DType::I64, device)};
  if (n == 0) return r;
  // The outputs exist: the logits' copy is workspace.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  MOEGRAD_DISPATCH(device, "router_topk", router_topk, r.probs, r.weights, r.indices,
                   logits.contiguous(), normalize);
  return r;
}

Tensor router_topk_backward(const Tensor& grad_weights, const Tensor& probs, const Tensor& indices,
                            bool normalize) {
  check_float(grad_weights, "grad_weights");
  check_float(probs, "probs");
  check_defined("router_topk", indices, "indices");
  check_same_dtype("router_topk", grad_weights, probs);
  check_same_device("router_topk", grad_weights, probs);
  check_same_device("router_topk", indices, probs);
  MOEGRAD_CHECK(indices.dtype() == DType::I64, "router_topk: expected int64 indices, got ",
                dtype_name(indices.dtype()));
  MOEGRAD_CHECK(probs.dim() == 2 && grad_weights.dim() == 2 &&
                    grad_weights.shape() == indices.shape() &&
                    grad_weights.size(0) == probs.size(0) && grad_weights.size(1) >= 1 &&
                    grad_weights.size(1) <= probs.size(1),
                "router_topk: backward expects grad_weights and indices [N, k] and probs [N, E] "
                "with 1 <= k <= E, got grad_weights ",
                shape_str(grad_weights.shape()), ", indices ", shape_str(indices.shape()),
                ", probs ", shape_str(probs.shape()));
  Tensor out = empty(probs.shape(), probs.dtype(), probs.device());
  if (probs.size(0) == 0) return out;
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // operand copies
  MOEGRAD_DISPATCH(probs.device(), "router_topk_backward", router_topk_backward, out,
                   grad_weights.contiguous(), probs.contiguous(), indices.contiguous(), normalize);
  return out;
}

}  // namespace moegrad
