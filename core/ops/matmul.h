// Matrix multiplication (2-D and batched, with broadcast batch dims) on OpenBLAS and cuBLAS,
// linear (x @ w^T, the HF Linear convention without bias), and the row-grouped GEMMs of MoE
// experts.
#pragma once
#include <vector>

#include "core/profiler.h"
#include "core/tensor.h"

namespace moegrad {

// op(a) @ op(b) where op transposes the last two dims when the flag is set: a is [..., M, K]
// ([..., K, M] with trans_a), b is [..., K, N] ([..., N, K] with trans_b), and the batch dims
// broadcast. Transposed or otherwise strided views go to BLAS without a copy whenever their
// last two dims are row- or column-major. Both operands need the same device and the same
// dtype: f32, f64, or bf16 (products accumulated in f32, each output rounded once to bf16).
// The same holds for grouped_matmul and grouped_matmul_tn.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// x [..., in] @ w^T for w [out, in]: [..., out].
Tensor linear(const Tensor& x, const Tensor& w);

// Row-grouped matmul, the experts of an MoE layer: x [R, K]'s rows form consecutive groups of
// rows[g] rows (summing to R), and group g is multiplied by its own matrix:
// out[group g] = x[group g] @ op(w[g]), where op(w[g]) is [K, N]: w[g] is [N, K] with trans_w
// (the Linear convention), [K, N] without. All w[g] share one shape; -> [R, N]. One grouped
// cuBLAS call on a GPU instead of a GEMM launch per group.
Tensor grouped_matmul(const Tensor& x, const std::vector<Tensor>& w,
                      const std::vector<int64_t>& rows, bool trans_w);
// Its weight-gradient form over the same row groups of a [R, M] and b [R, N]: for each group g
// with want[g], a[group g]^T @ b[group g] ([M, N]; zeros for a group of no rows); an undefined
// Tensor where !want[g]. With want.size() = blocks x groups, a's columns split into `blocks`
// equal consecutive blocks, each a weight of its own ([M / blocks, N] results, block 0's groups
// first), all in one grouped call: the gradients of projections that ran as one GEMM.
std::vector<Tensor> grouped_matmul_tn(const Tensor& a, const Tensor& b,
                                      const std::vector<int64_t>& rows,
                                      const std::vector<bool>& want);

// grouped_matmul with the groups where they were made, for routing that stays on a GPU: out[r] =
// x[rows[r]] @ op(w[g]) for r in [start[g], start[g + 1]), w a stack of G weights ([G, N, K] with
// trans_w, [G, K, N] without; each row-major) and start [G + 1] int64 on x's device, non-decreasing
// from 0 to R. rows [R] (int32 or int64) picks x's rows, repeats allowed, or is undefined for x's
// own rows in order (R = x's rows); -> [R, N]. The rows and starts are trusted, as group_by_index
// makes them: a GPU checks neither (a check would wait for the device), the CPU checks the starts.
// On a GPU in bf16, with K and N multiples of 8, one kernel of moegrad's own (tensor cores, the
// gather in its loads) reads the starts where they are; elsewhere they come to the host for
// grouped_matmul.
Tensor gathered_grouped_matmul(const Tensor& x, const Tensor& rows, const Tensor& w,
                               const Tensor& start, bool trans_w);
// Its weight-gradient form over R rows in groups: out[g] = a[a_rows[group g]]^T @
// b[b_rows[group g]] for a [*, M], b [*, N] and picks a_rows and b_rows [R] (int32 or int64;
// undefined: the operand's own rows, then R of them); -> [G, M, N] with G = start's size - 1,
// zeros for a group of no rows. The same trust, and the same kernel rule (bf16 on a GPU, M and N
// multiples of 8), the gathers again in the kernel's loads.
Tensor gathered_grouped_matmul_tn(const Tensor& a, const Tensor& a_rows, const Tensor& b,
                                  const Tensor& b_rows, const Tensor& start);

// One batched GEMM in row-major BLAS terms: for every index i over `batch`,
// out_i = op(a_i) @ op(b_i), op transposing when the flag is set. Operand i starts at the
// tensor's data pointer plus the dot product of i with its batch strides (elements); its
// matrix has leading dimension ld. out is [M, N] row-major with leading dimension n.
struct GemmBatch {
  Tensor a, b, out;
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0, lda = 0, ldb = 0;
  Shape batch;                           // outermost first; empty for a single GEMM
  Shape stride_a, stride_b, stride_out;  // one per batch dim
};

// 2 * M * N * K FLOPs per batch entry, and its operands' bytes, for the profiler.
void add_cost(profiler::Cost& cost, const GemmBatch& g);

// Independent single GEMMs (empty batch) of one dtype and device, run as one grouped call.
using GroupedGemm = std::vector<GemmBatch>;

namespace cpu {
void gemm(const GemmBatch& g);
void grouped_gemm(const GroupedGemm& problems);
}  // namespace cpu
namespace cuda {
void gemm(const GemmBatch& g);
void grouped_gemm(const GroupedGemm& problems);
// The kernels of gathered_grouped_matmul and gathered_grouped_matmul_tn: whether they take these
// operands (`total` output rows, `groups` groups), and the calls.
bool gathered_grouped_gemm_fits(const Tensor& x, const Tensor& w, int64_t total, bool trans_w);
void gathered_grouped_gemm(const Tensor& out, const Tensor& x, const Tensor& rows, const Tensor& w,
                           const Tensor& start, bool trans_w);
bool gathered_grouped_gemm_tn_fits(const Tensor& a, const Tensor& b, int64_t groups);
// The tn kernel's picks share one index type; `total` is R.
void gathered_grouped_gemm_tn(const Tensor& out, const Tensor& a, const Tensor& a_rows,
                              const Tensor& b, const Tensor& b_rows, const Tensor& start,
                              int64_t total);
}  // namespace cuda

}  // namespace moegrad
