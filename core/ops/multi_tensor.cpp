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

void accumulate_(const std::vector<Tensor>& sums, const std::vector<Tensor>& addends) {
  const char* op = "accumulate_";
  MOEGRAD_CHECK(sums.size() == addends.size(), op, ": ", sums.size(), " sums but ",
                addends.size(), " addends");
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // copies, tables
  // The pairs by the addend's dtype: one backend call for each.
  std::vector<Tensor> f32_sums, f32_addends, bf16_sums, bf16_addends;
  for (size_t i = 0; i < sums.size(); ++i) {
    const Tensor& sum = sums[i];
    const Tensor& x = addends[i];
    if (!x.defined() || x.numel() == 0) continue;
    check_defined(op, sum, "sum");
    MOEGRAD_CHECK(sum.dtype() == DType::F32 && sum.is_contiguous(), op, ": sum ", i,
                  " must be a contiguous float32 tensor, got ", dtype_name(sum.dtype()),
                  sum.is_contiguous() ? "" : " (not contiguous)");
    MOEGRAD_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::BF16, op, ": addend ", i,
                  " must be float32 or bfloat16, got ", dtype_name(x.dtype()));
    MOEGRAD_CHECK(x.shape() == sum.shape(), op, ": addend ", i, " ", shape_str(x.shape()),
                  " differs from its sum ", shape_str(sum.shape()));
    check_same_device(op, sum, x);
    if (!f32_sums.empty() || !bf16_sums.empty())  // one device for the whole list
      check_same_device(op, f32_sums.empty() ? bf16_sums[0] : f32_sums[0], sum);
    const bool wide = x.dtype() == DType::F32;
    (wide ? f32_sums : bf16_sums).push_back(sum);
    (wide ? f32_addends : bf16_addends).push_back(x.contiguous());
  }
  if (!f32_sums.empty())
    MOEGRAD_DISPATCH(f32_sums[0].device(), op, accumulate_, f32_sums, f32_addends);
  if (!bf16_sums.empty())
    MOEGRAD_DISPATCH(bf16_sums[0].device(), op, accumulate_, bf16_sums, bf16_addends);
}

}  // namespace moegrad
