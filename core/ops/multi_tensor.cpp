#include "core/ops/multi_tensor.h"

#include "core/ops/dispatch.h"
#include "core/ops/unary.h"
#include "core/storage.h"

namespace moegrad {
namespace {

// The defined, non-empty tensors, checked to be float and on one device.
std::vector<Tensor> members(const char* op, const std::vector<Tensor>& tensors) {
  std::vector<Tensor> out;
  for (const Tensor& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    MOEGRAD_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64 || t.dtype() == DType::BF16,
                  op, ": expected float32, float64 or bfloat16 tensors, got ",
                  dtype_name(t.dtype()));
    if (!out.empty()) check_same_device(op, out[0], t);
    out.push_back(t);
  }
  return out;
}

}  // namespace

Tensor sum_of_squares(const std::vector<Tensor>& tensors) {
  const char* op = "sum_of_squares";
  std::vector<Tensor> xs = members(op, tensors);
  if (xs.empty()) return zeros({1}, DType::F64);
  Tensor out = zeros({1}, DType::F64, xs[0].device());
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // copies, partial sums, tables
  // One backend call per dtype, each adding into out in list order.
  for (DType dt : {DType::F32, DType::F64, DType::BF16}) {
    std::vector<Tensor> group;
    for (const Tensor& x : xs)
      if (x.dtype() == dt) group.push_back(x.contiguous());
    if (!group.empty()) MOEGRAD_DISPATCH(out.device(), op, sum_of_squares, out, group);
  }
  return out;
}

void scale_(const std::vector<Tensor>& tensors, double factor) {
  // In place: what it allocates (scalars, tables) is scratch.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  std::vector<Tensor> dense;
  for (const Tensor& x : members("scale_", tensors)) {
    if (x.is_contiguous()) {
      dense.push_back(x);
    } else {
      x.copy_(mul_scalar(x, factor));  // the factor in compute_t, as the dense kernel takes it
    }
  }
  if (!dense.empty()) MOEGRAD_DISPATCH(dense[0].device(), "scale_", scale_, dense, factor);
}

}  // namespace moegrad
