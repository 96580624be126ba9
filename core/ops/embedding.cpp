#include "core/ops/embedding.h"

#include "core/ops/dispatch.h"
#include "core/ops/index.h"
#include "core/storage.h"

namespace moegrad {

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  check_defined("embedding", weight, "weight");
  check_defined("embedding", ids, "ids");
  MOEGRAD_CHECK(weight.dim() == 2, "embedding: expected a weight of shape [V, H], got ",
                shape_str(weight.shape()));
  check_same_device("embedding", weight, ids);
  check_index_range("embedding", ids, weight.size(0),
                    "the rows of weight " + shape_str(weight.shape()));
  // out[i, h] = weight[ids[i], h]: weight's row stride zeroed, ids broadcast along h.
  const int64_t n = ids.numel(), hidden = weight.size(1);
  Tensor out = empty({n, hidden}, weight.dtype(), weight.device());
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // a copy of strided ids
  Tensor flat = ids.reshape({n});
  Tensor wv = weight.as_strided({n, hidden}, {0, weight.stride(1)}, weight.offset());
  Tensor iv = flat.as_strided({n, hidden}, {flat.stride(0), 0}, flat.offset());
  MOEGRAD_DISPATCH(weight.device(), "embedding", gather, out, wv, iv, weight.stride(0));
  Shape shape = ids.shape();
  shape.push_back(hidden);
  return out.view(shape);
}

Tensor embedding_backward(const Tensor& grad, const Tensor& ids, int64_t vocab_size) {
  check_defined("embedding_backward", grad, "grad");
  check_defined("embedding_backward", ids, "ids");
  MOEGRAD_CHECK(grad.dim() == ids.dim() + 1 &&
                    Shape(grad.shape().begin(), grad.shape().end() - 1) == ids.shape(),
                "embedding_backward: grad shape ", shape_str(grad.shape()),
                " must be the ids shape ", shape_str(ids.shape()), " plus a hidden dim");
  check_same_device("embedding_backward", grad, ids);
  const DType dt = grad.dtype();
  MOEGRAD_CHECK(dt == DType::F32 || dt == DType::F64 || dt == DType::BF16,
                "embedding_backward: expected a float32, float64 or bfloat16 grad, got ",
                dtype_name(dt));
  check_index_range("embedding_backward", ids, vocab_size,
                    detail::concat("a vocabulary of ", vocab_size));
  const int64_t n = ids.numel(), hidden = grad.size(-1);
  Tensor out = zeros({vocab_size, hidden}, dt, grad.device());
  if (n == 0 || hidden == 0) return out;
  // The output exists: operand copies and the kernel's sort buffers are workspace.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  // index_add sums a bf16 gradient's rows in f32 and rounds each sum once (a frequent id's
  // row adds up thousands of rows).
  MOEGRAD_DISPATCH(grad.device(), "embedding_backward", index_add, out.view({1, vocab_size, hidden}),
                   ids.reshape({n}).contiguous(), grad.contiguous().view({1, n, hidden}));
  return out;
}

}  // namespace moegrad
