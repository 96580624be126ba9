// Turns matmul's operands into a GemmBatch both backends run as is: how BLAS reads each
// operand (row- or column-major, leading dimension), which batch dims collapse, and when the
// whole batch folds into one GEMM.
#include "core/ops/matmul.h"

#include <algorithm>
#include <climits>
#include <string>

#include "core/ops/dispatch.h"
#include "core/ops/index.h"
#include "core/ops/join.h"
#include "core/storage.h"

namespace moegrad {
namespace {

// How BLAS reads a rows x cols matrix with element strides (sr, sc): row-major (trans false)
// or column-major (trans true, read as the transpose of a row-major matrix), and its leading
// dimension. False when it is neither. A dim of size 1 has a meaningless stride, so it takes
// the smallest leading dimension BLAS accepts.
bool blas_layout(int64_t rows, int64_t cols, int64_t sr, int64_t sc, bool& trans, int64_t& ld) {
  if ((sc == 1 || cols == 1) && (rows == 1 || sr >= std::max<int64_t>(cols, 1))) {
    trans = false;
    ld = rows == 1 ? std::max<int64_t>(cols, 1) : sr;
    return true;
  }
  if ((sr == 1 || rows == 1) && (cols == 1 || sc >= std::max<int64_t>(rows, 1))) {
    trans = true;
    ld = cols == 1 ? std::max<int64_t>(rows, 1) : sc;
    return true;
  }
  return false;
}

// The operand itself when BLAS can read its matrices, else a contiguous copy.
Tensor blas_ready(const Tensor& t) {
  bool trans;
  int64_t ld;
  if (blas_layout(t.size(-2), t.size(-1), t.stride(-2), t.stride(-1), trans, ld)) return t;
  return t.contiguous();
}

// When b is the same matrix for every batch entry and a's batch and row dims merge into one
// evenly strided run of rows (a contiguous [B, T, D] activation, say), the batch is a single
// GEMM with M = B * T rows: one large call instead of many small ones.
bool fold_batch_into_rows(GemmBatch& g, const Shape& batch) {
  int64_t rows = g.m, row_stride = g.a.stride(-2);
  bool have_run = g.m != 1;
  for (int64_t d = int64_t(batch.size()) - 1; d >= 0; --d) {
    if (batch[d] == 1) continue;
    if (g.b.stride(d) != 0) return false;
    if (have_run && g.a.stride(d) != row_stride * rows) return false;
    if (!have_run) row_stride = g.a.stride(d);
    have_run = true;
    rows *= batch[d];
  }
  if (!blas_layout(rows, g.k, row_stride, g.a.stride(-1), g.trans_a, g.lda)) return false;
  g.m = rows;
  return true;
}

// Batch dims of size 1 are dropped and neighbours merged where all three operands step
// evenly across them, so the CUDA backend's strided-batched call covers as much as it can.
void collapse_batch(GemmBatch& g, const Shape& batch) {
  for (size_t d = 0; d < batch.size(); ++d) {
    if (batch[d] == 1) continue;
    int64_t sa = g.a.stride(d), sb = g.b.stride(d), so = g.out.stride(d);
    if (!g.batch.empty() && g.stride_a.back() == sa * batch[d] &&
        g.stride_b.back() == sb * batch[d] && g.stride_out.back() == so * batch[d]) {
      g.batch.back() *= batch[d];
      g.stride_a.back() = sa;
      g.stride_b.back() = sb;
      g.stride_out.back() = so;
      continue;
    }
    g.batch.push_back(batch[d]);
    g.stride_a.push_back(sa);
    g.stride_b.push_back(sb);
    g.stride_out.push_back(so);
  }
}

// la [..., M, K] and lb [..., K, N] are the logical operands (transposes already applied).
GemmBatch plan(const Tensor& la, const Tensor& lb, const Tensor& out, const Shape& batch) {
  GemmBatch g;
  g.m = la.size(-2);
  g.k = la.size(-1);
  g.n = lb.size(-1);
  Shape sa = batch, sb = batch;
  sa.insert(sa.end(), {g.m, g.k});
  sb.insert(sb.end(), {g.k, g.n});
  g.a = blas_ready(la).expand(sa);
  g.b = blas_ready(lb).expand(sb);
  g.out = out;
  blas_layout(g.m, g.k, g.a.stride(-2), g.a.stride(-1), g.trans_a, g.lda);
  blas_layout(g.k, g.n, g.b.stride(-2), g.b.stride(-1), g.trans_b, g.ldb);
  if (!fold_batch_into_rows(g, batch)) collapse_batch(g, batch);
  for (int64_t v : {g.m, g.n, g.k, g.lda, g.ldb})
    MOEGRAD_CHECK(v <= INT_MAX, "matmul: ", shape_str(la.shape()), " @ ", shape_str(lb.shape()),
                  " has a dim or leading dimension over BLAS's 32-bit limit");
  return g;
}

Shape batch_dims(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); }

// out = op(a) @ op(b) for row-major a and b (unit column stride; rows of a wider matrix, a
// column block of one, read in place) and a contiguous out, no batch.
GemmBatch single_gemm(const Tensor& a, const Tensor& b, const Tensor& out, bool trans_a,
                      bool trans_b) {
  GemmBatch g;
  g.a = a;
  g.b = b;
  g.out = out;
  g.trans_a = trans_a;
  g.trans_b = trans_b;
  g.m = out.size(0);
  g.n = out.size(1);
  g.k = trans_a ? a.size(0) : a.size(1);
  g.lda = std::max(a.stride(0), a.size(1));
  g.ldb = std::max(b.stride(0), b.size(1));
  for (int64_t v : {g.m, g.n, g.k, g.lda, g.ldb})
    MOEGRAD_CHECK(v <= INT_MAX, "grouped_matmul: a dim of ", v, " is over BLAS's 32-bit limit");
  return g;
}

// The group sizes partition `total` rows.
void check_row_groups(const char* op, const std::vector<int64_t>& rows, int64_t total) {
  int64_t sum = 0;
  for (int64_t r : rows) {
    MOEGRAD_CHECK(r >= 0, op, ": negative group size ", r);
    sum += r;
  }
  MOEGRAD_CHECK(sum == total, op, ": group sizes sum to ", sum, " rows, but the input has ",
                total);
}

// bf16 operands multiply with f32 accumulation into a bf16 result.
void check_compute_dtype(const char* op, const Tensor& t) {
  const DType d = t.dtype();
  MOEGRAD_CHECK(d == DType::F32 || d == DType::F64 || d == DType::BF16, op,
                ": expected float32, float64 or bfloat16 operands, got ", dtype_name(d));
}

void check_float_operand(const char* op, const Tensor& t, const Tensor& like, const char* what) {
  check_defined(op, t, what);
  check_same_device(op, t, like);
  check_same_dtype(op, t, like);
  check_compute_dtype(op, t);
  MOEGRAD_CHECK(t.dim() == 2, op, ": expected a 2-D ", what, ", got ", shape_str(t.shape()));
}

void run_grouped(const Device& device, const GroupedGemm& problems) {
  if (!problems.empty()) MOEGRAD_DISPATCH(device, "grouped_matmul", grouped_gemm, problems);
}

// Group starts: an int64 vector on `like`'s device, of `groups` + 1 entries (at least 2 when
// groups is -1).
void check_group_starts(const char* op, const Tensor& start, const Tensor& like, int64_t groups) {
  check_defined(op, start, "group starts");
  check_same_device(op, start, like);
  const bool sized =
      start.dim() == 1 && (groups < 0 ? start.size(0) >= 2 : start.size(0) == groups + 1);
  const std::string expected = groups < 0 ? std::string("[G + 1] with G > 0")
                                          : "[" + std::to_string(groups + 1) + "] for " +
                                                std::to_string(groups) + " weights";
  MOEGRAD_CHECK(start.dtype() == DType::I64 && sized, op, ": group starts must be int64 ", expected,
                ", got ", dtype_name(start.dtype()), " ", shape_str(start.shape()));
}

// Row picks, when given: a 1-D int32 or int64 index on `like`'s device, of `count` entries
// unless count is -1.
void check_row_picks(const char* op, const Tensor& rows, const Tensor& like, int64_t count) {
  if (!rows.defined()) return;
  check_same_device(op, rows, like);
  MOEGRAD_CHECK(rows.dim() == 1 && (rows.dtype() == DType::I32 || rows.dtype() == DType::I64), op,
                ": rows must be a 1-D int32 or int64 index, got ", dtype_name(rows.dtype()), " ",
                shape_str(rows.shape()));
  MOEGRAD_CHECK(count < 0 || rows.size(0) == count, op, ": ", rows.size(0), " rows picked for ",
                count, " rows");
}

// The sizes of the groups whose starts the host reads (a wait on a GPU), checked: from 0 to
// `total`, never decreasing.
std::vector<int64_t> host_group_sizes(const char* op, const Tensor& start, int64_t total) {
  const std::vector<int64_t> starts = start.to_vector<int64_t>();
  MOEGRAD_CHECK(starts[0] == 0 && starts.back() == total, op, ": group starts run from ", starts[0],
                " to ", starts.back(), ", expected 0 to ", total, " rows");
  const std::vector<int64_t> sizes = group_sizes(starts);
  for (size_t g = 0; g < sizes.size(); ++g) {
    MOEGRAD_CHECK(sizes[g] >= 0, op, ": group starts decrease at group ", g, " (", starts[g],
                  " then ", starts[g + 1], ")");
  }
  return sizes;
}

// x's rows `rows` (the gathered kernels' picks, made on the host path), or x when undefined.
Tensor picked_rows(const Tensor& x, const Tensor& rows) {
  return rows.defined() ? index_select(x, 0, rows) : x;
}

#ifdef MOEGRAD_WITH_CUDA
Tensor contiguous_if_defined(const Tensor& t) { return t.defined() ? t.contiguous() : t; }

// A kernel's profiled cost: its FLOPs and its tensors' bytes.
template <typename... Tensors>
profiler::Cost gemm_cost(double flops, const Tensors&... tensors) {
  profiler::Cost cost = profiler::op_cost(tensors...);
  cost.flops = flops;
  return cost;
}
#endif

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check_defined("matmul", a, "first");
  check_defined("matmul", b, "second");
  check_same_device("matmul", a, b);
  check_same_dtype("matmul", a, b);
  check_compute_dtype("matmul", a);
  MOEGRAD_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: expected operands of at least 2 dims, got ",
                shape_str(a.shape()), " and ", shape_str(b.shape()));
  Tensor la = trans_a ? a.transpose(-2, -1) : a;
  Tensor lb = trans_b ? b.transpose(-2, -1) : b;
  MOEGRAD_CHECK(la.size(-1) == lb.size(-2), "matmul: inner dims differ in ", shape_str(a.shape()),
                trans_a ? "^T" : "", " @ ", shape_str(b.shape()), trans_b ? "^T" : "");
  Shape batch = broadcast_shapes(batch_dims(a), batch_dims(b), "matmul");
  Shape out_shape = batch;
  out_shape.insert(out_shape.end(), {la.size(-2), lb.size(-1)});
  Tensor out = empty(out_shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  if (la.size(-1) == 0) return out.zero_();  // a sum over nothing
  // The output exists: the operands' copies are workspace.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  MOEGRAD_DISPATCH(a.device(), "matmul", gemm, plan(la, lb, out, batch));
  return out;
}

Tensor linear(const Tensor& x, const Tensor& w) {
  check_defined("linear", x, "input");
  check_defined("linear", w, "weight");
  MOEGRAD_CHECK(w.dim() == 2 && x.dim() >= 1 && x.size(-1) == w.size(1),
                "linear: expected input [..., in] and weight [out, in], got ", shape_str(x.shape()),
                " and ", shape_str(w.shape()));
  Shape out_shape = x.shape();
  out_shape.back() = w.size(0);
  return matmul(x.dim() == 1 ? x.unsqueeze(0) : x, w, false, true).view(out_shape);
}

void add_cost(profiler::Cost& cost, const GemmBatch& g) {
  const double batch = double(shape_numel(g.batch)), size = double(dtype_size(g.out.dtype()));
  cost.flops += 2.0 * batch * double(g.m) * double(g.n) * double(g.k);
  cost.bytes += batch * size * double(g.m * g.k + g.k * g.n + g.m * g.n);
}

Tensor grouped_matmul(const Tensor& x, const std::vector<Tensor>& w,
                      const std::vector<int64_t>& rows, bool trans_w) {
  const char* op = "grouped_matmul";
  check_float_operand(op, x, x, "input");
  MOEGRAD_CHECK(!w.empty() && w.size() == rows.size(), op, ": ", w.size(), " weights for ",
                rows.size(), " row groups");
  for (const Tensor& wg : w) {
    check_float_operand(op, wg, x, "weight");
    MOEGRAD_CHECK(wg.shape() == w[0].shape(), op, ": weights ", shape_str(w[0].shape()), " and ",
                  shape_str(wg.shape()), " differ in shape");
  }
  const int64_t k = x.size(1), n = trans_w ? w[0].size(0) : w[0].size(1);
  MOEGRAD_CHECK((trans_w ? w[0].size(1) : w[0].size(0)) == k, op, ": input ",
                shape_str(x.shape()), " does not fit weights ", shape_str(w[0].shape()),
                trans_w ? "^T" : "");
  check_row_groups(op, rows, x.size(0));
  Tensor out = empty({x.size(0), n}, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  if (k == 0) return out.zero_();
  // Operand copies, the device's address table.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  const Tensor xc = x.contiguous();
  GroupedGemm problems;
  for (size_t g = 0, start = 0; g < rows.size(); start += size_t(rows[g]), ++g)
    if (rows[g] > 0)
      problems.push_back(single_gemm(xc.narrow(0, int64_t(start), rows[g]), w[g].contiguous(),
                                     out.narrow(0, int64_t(start), rows[g]), false, trans_w));
  run_grouped(x.device(), problems);
  return out;
}

Tensor gathered_grouped_matmul(const Tensor& x, const Tensor& rows, const Tensor& w,
                               const Tensor& start, bool trans_w) {
  const char* op = "gathered_grouped_matmul";
  check_float_operand(op, x, x, "input");
  check_defined(op, w, "weight stack");
  check_same_device(op, w, x);
  check_same_dtype(op, w, x);
  MOEGRAD_CHECK(w.dim() == 3 && w.size(0) > 0, op, ": expected a weight stack [G, ",
                trans_w ? "N, K" : "K, N", "] with G > 0, got ", shape_str(w.shape()));
  const int64_t groups = w.size(0), k = x.size(1);
  MOEGRAD_CHECK(w.size(trans_w ? 2 : 1) == k, op, ": input ", shape_str(x.shape()),
                " does not fit weights ", shape_str(w.shape()), trans_w ? "^T" : "");
  check_group_starts(op, start, x, groups);
  check_row_picks(op, rows, x, -1);
  const int64_t total = rows.defined() ? rows.size(0) : x.size(0);
#ifdef MOEGRAD_WITH_CUDA
  if (x.device().is_cuda() && cuda::gathered_grouped_gemm_fits(x, w, total, trans_w)) {
    Tensor out = empty({total, w.size(trans_w ? 1 : 2)}, x.dtype(), x.device());
    if (out.numel() == 0) return out;
    const profiler::Scope scope(profiler::Kind::Op, op, x.device(),
                                gemm_cost(2.0 * double(out.numel()) * double(k), out, x, rows, w));
    cuda::gathered_grouped_gemm(out, x, contiguous_if_defined(rows), w, start.contiguous(),
                                trans_w);
    return out;
  }
#endif
  const std::vector<int64_t> counts = host_group_sizes(op, start, total);
  std::vector<Tensor> weights;
  for (int64_t g = 0; g < groups; ++g) weights.push_back(w.select(0, g));
  return grouped_matmul(picked_rows(x, rows), weights, counts, trans_w);
}

Tensor gathered_grouped_matmul_tn(const Tensor& a, const Tensor& a_rows, const Tensor& b,
                                  const Tensor& b_rows, const Tensor& start) {
  const char* op = "gathered_grouped_matmul_tn";
  check_float_operand(op, a, a, "first operand");
  check_float_operand(op, b, a, "second operand");
  check_group_starts(op, start, a, -1);
  check_row_picks(op, a_rows, a, -1);
  const int64_t total = a_rows.defined() ? a_rows.size(0) : a.size(0);
  check_row_picks(op, b_rows, a, total);
  MOEGRAD_CHECK(b_rows.defined() || b.size(0) == total, op, ": second operand ",
                shape_str(b.shape()), " has ", b.size(0), " rows, expected ", total,
                a_rows.defined() ? " (the first operand's picks)" : " (the first operand's rows)");
  const int64_t groups = start.size(0) - 1;
#ifdef MOEGRAD_WITH_CUDA
  if (a.device().is_cuda() && cuda::gathered_grouped_gemm_tn_fits(a, b, groups)) {
    Tensor out = empty({groups, a.size(1), b.size(1)}, a.dtype(), a.device());
    if (out.numel() == 0) return out;
    const double flops = 2.0 * double(total) * double(a.size(1)) * double(b.size(1));
    const profiler::Scope scope(profiler::Kind::Op, op, a.device(),
                                gemm_cost(flops, out, a, a_rows, b, b_rows));
    // The kernel reads both picks in one index type.
    const bool mixed = a_rows.defined() && b_rows.defined() && a_rows.dtype() != b_rows.dtype();
    auto picks = [&](const Tensor& rows) {
      return contiguous_if_defined(mixed ? rows.to(DType::I64) : rows);
    };
    cuda::gathered_grouped_gemm_tn(out, a, picks(a_rows), b, picks(b_rows), start.contiguous(),
                                   total);
    return out;
  }
#endif
  const std::vector<int64_t> counts = host_group_sizes(op, start, total);
  std::vector<Tensor> parts = grouped_matmul_tn(picked_rows(a, a_rows), picked_rows(b, b_rows),
                                                counts, std::vector<bool>(size_t(groups), true));
  return stack(parts, 0);
}

std::vector<Tensor> grouped_matmul_tn(const Tensor& a, const Tensor& b,
                                      const std::vector<int64_t>& rows,
                                      const std::vector<bool>& want) {
  const char* op = "grouped_matmul_tn";
  check_float_operand(op, a, a, "first operand");
  check_float_operand(op, b, a, "second operand");
  MOEGRAD_CHECK(a.size(0) == b.size(0), op, ": operands ", shape_str(a.shape()), " and ",
                shape_str(b.shape()), " differ in rows");
  const size_t groups = rows.size();
  MOEGRAD_CHECK(groups > 0 && !want.empty() && want.size() % groups == 0, op, ": ", want.size(),
                " flags for ", groups, " row groups (expected a positive multiple)");
  const int64_t blocks = int64_t(want.size() / groups);
  MOEGRAD_CHECK(a.size(1) % blocks == 0, op, ": first operand ", shape_str(a.shape()),
                " does not split into ", blocks, " column blocks");
  check_row_groups(op, rows, a.size(0));
  const int64_t width = a.size(1) / blocks;
  std::vector<Tensor> out(want.size());
  for (size_t i = 0; i < want.size(); ++i)
    if (want[i]) out[i] = empty({width, b.size(1)}, a.dtype(), a.device());
  // Operand copies, the device's address table.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  GroupedGemm problems;
  for (int64_t block = 0; block < blocks; ++block) {
    const Tensor a_block = ac.narrow(1, block * width, width);
    for (size_t g = 0, start = 0; g < groups; start += size_t(rows[g]), ++g) {
      const Tensor& o = out[size_t(block) * groups + g];
      if (!o.defined()) continue;
      if (rows[g] == 0 || o.numel() == 0) {
        o.zero_();
        continue;
      }
      problems.push_back(single_gemm(a_block.narrow(0, int64_t(start), rows[g]),
                                     bc.narrow(0, int64_t(start), rows[g]), o, true, false));
    }
  }
  run_grouped(a.device(), problems);
  return out;
}

}  // namespace moegrad
