#include "core/ops/topk.h"

#include "core/ops/dispatch.h"
#include "core/storage.h"

namespace moegrad {

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k) {
  check_defined("topk", x, "input");
  MOEGRAD_CHECK(x.dim() >= 1, "topk: expected at least one dim, got a 0-d tensor");
  const DType dt = x.dtype();
  MOEGRAD_CHECK(dt == DType::F32 || dt == DType::F64 || dt == DType::BF16,
                "topk: expected a float32, float64 or bfloat16 tensor, got ", dtype_name(dt));
  const int64_t n = x.size(-1);
  MOEGRAD_CHECK(k >= 0 && k <= n, "topk: k = ", k, " out of range [0, ", n,
                "] for the last dim of shape ", shape_str(x.shape()));
  Shape shape = x.shape();
  shape.back() = k;
  Tensor values = empty(shape, x.dtype(), x.device());
  Tensor indices = empty(shape, DType::I64, x.device());
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  if (rows == 0 || k == 0) return {values, indices};
  // The outputs exist: the input's copy is workspace.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  MOEGRAD_DISPATCH(x.device(), "topk", topk, values.view({rows, k}), indices.view({rows, k}),
                   x.contiguous().view({rows, n}));
  return {values, indices};
}

}  // namespace moegrad
