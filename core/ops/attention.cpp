#include "core/ops/attention.h"

#include <cmath>

#include "core/ops/dispatch.h"
#include "core/storage.h"

namespace moegrad {
namespace {

// BLAS (and the CUDA kernels) read a [rows, D] matrix through a row stride (its leading
// dimension) and need unit stride along D: transposed views such as [B, T, H, D].transpose(1, 2)
// qualify as they are.
Tensor blas_ready(const Tensor& t) {
  const bool unit_inner = t.size(-1) == 1 || t.stride(-1) == 1;
  const bool rows_apart = t.size(-2) == 1 || t.stride(-2) >= t.size(-1);
  return unit_inner && rows_apart ? t : t.contiguous();
}

void check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  check_defined(op, q, "q");
  check_defined(op, k, "k");
  check_defined(op, v, "v");
  check_same_device(op, q, k);
  check_same_device(op, q, v);
  check_same_dtype(op, q, k);
  check_same_dtype(op, q, v);
  const bool ok = q.dim() == 4 && k.dim() == 4 && k.shape() == v.shape() &&
                  q.size(0) == k.size(0) && q.size(3) == k.size(3) && q.size(3) > 0 &&
                  k.size(1) > 0 && q.size(1) % k.size(1) == 0;
  MOEGRAD_CHECK(ok, op, ": expected q [B, H, T, D] and k, v [B, Hkv, S, D] with H divisible by ",
                "Hkv and D > 0, got q ", shape_str(q.shape()), ", k ", shape_str(k.shape()),
                ", v ", shape_str(v.shape()));
}

// The mask viewed as [B, H, T, S] (stride 0 along broadcast dims), or undefined.
Tensor expanded_mask(const char* op, const Tensor& mask, const Tensor& q, const Tensor& k) {
  if (!mask.defined()) return mask;
  check_same_device(op, mask, q);
  check_same_dtype(op, mask, q);
  const Shape full{q.size(0), q.size(1), q.size(2), k.size(2)};
  const bool ok = mask.dim() <= 4 && broadcast_shapes(mask.shape(), full, op) == full;
  MOEGRAD_CHECK(ok, op, ": mask ", shape_str(mask.shape()), " does not broadcast to [B, H, T, S] = ",
                shape_str(full));
  return mask.expand(full);
}

// lse is a statistic: bf16 inputs keep it in f32, the precision the kernels compute in.
DType stat_dtype(const Tensor& q) { return q.dtype() == DType::BF16 ? DType::F32 : q.dtype(); }

double resolve_scale(const Tensor& q, std::optional<double> scale) {
  return scale.value_or(1.0 / std::sqrt(double(q.size(3))));
}

// Multiply-adds per (query, key) pair and head dim: forward QK^T and PV (2 each, 2 FLOPs per
// multiply-add); backward recomputes QK^T and forms dV, dP, dQ and dK (5). Causal attention
// computes only the pairs where the key is not after the query (queries aligned to the end).
void profile_attention_flops(const char* op, const Tensor& q, const Tensor& k, bool causal,
                             double per_pair) {
  const double tq = double(q.size(2)), tk = double(k.size(2));
  const double pairs = causal ? tq * (tk - tq) + tq * (tq + 1) / 2 : tq * tk;
  profiler::add_to_next_op(
      op, {2.0 * per_pair * double(q.size(0)) * double(q.size(1)) * pairs * double(q.size(3)), 0.0});
}

}  // namespace

AttentionOutput attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                  const Tensor& mask, std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention";
  check_qkv(op, q, k, v);
  Tensor m = expanded_mask(op, mask, q, k);
  const Tensor qr = blas_ready(q);
  AttentionOutput res{empty_like_layout(qr),
                      empty({q.size(0), q.size(1), q.size(2)}, stat_dtype(q), q.device())};
  profile_attention_flops(op, q, k, causal, 2);
  // The outputs exist: the operands' copies and the kernels' scratch are workspace.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  MOEGRAD_DISPATCH(q.device(), op, attention_forward, res.out, res.lse, qr, blas_ready(k),
                   blas_ready(v), causal, m, resolve_scale(q, scale));
  return res;
}

AttentionGrads attention_backward(const Tensor& grad, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Tensor& out, const Tensor& lse,
                                  bool causal, const Tensor& mask, std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention_backward";
  check_qkv(op, q, k, v);
  check_defined(op, grad, "grad");
  check_defined(op, out, "out");
  check_defined(op, lse, "lse");
  for (const Tensor* t : {&grad, &out, &lse}) check_same_device(op, *t, q);
  check_same_dtype(op, grad, q);
  check_same_dtype(op, out, q);
  MOEGRAD_CHECK(lse.dtype() == stat_dtype(q), op, ": expected lse of dtype ",
                dtype_name(stat_dtype(q)), " for q of dtype ", dtype_name(q.dtype()), ", got ",
                dtype_name(lse.dtype()));
  const Shape lse_shape{q.size(0), q.size(1), q.size(2)};
  MOEGRAD_CHECK(grad.shape() == q.shape() && out.shape() == q.shape() && lse.shape() == lse_shape,
                op, ": expected grad and out ", shape_str(q.shape()), " and lse ",
                shape_str(lse_shape), ", got grad ", shape_str(grad.shape()), ", out ",
                shape_str(out.shape()), " and lse ", shape_str(lse.shape()));
  Tensor m = expanded_mask(op, mask, q, k);
  const Tensor qr = blas_ready(q), kr = blas_ready(k), vr = blas_ready(v);
  AttentionGrads g{empty_like_layout(qr), empty_like_layout(kr), empty_like_layout(vr)};
  profile_attention_flops(op, q, k, causal, 5);
  // Operand copies, the grouped heads' dK and dV slots, the kernels' row dots.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  MOEGRAD_DISPATCH(q.device(), op, attention_backward, g.dq, g.dk, g.dv, blas_ready(grad), qr, kr,
                   vr, blas_ready(out), lse.contiguous(), causal, m, resolve_scale(q, scale));
  return g;
}

}  // namespace moegrad
