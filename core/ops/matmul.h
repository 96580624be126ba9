// Matrix multiplication (2-D and batched, with broadcast batch dims) on OpenBLAS and cuBLAS,
// and linear (x @ w^T, the HF Linear convention without bias).
#pragma once
#include "core/tensor.h"

namespace moegrad {

// op(a) @ op(b) where op transposes the last two dims when the flag is set: a is [..., M, K]
// ([..., K, M] with trans_a), b is [..., K, N] ([..., N, K] with trans_b), and the batch dims
// broadcast. Transposed or otherwise strided views go to BLAS without a copy whenever their
// last two dims are row- or column-major. Both operands need the same float dtype and device.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// x [..., in] @ w^T for w [out, in]: [..., out].
Tensor linear(const Tensor& x, const Tensor& w);

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

namespace cpu {
void gemm(const GemmBatch& g);
}  // namespace cpu
namespace cuda {
void gemm(const GemmBatch& g);
}  // namespace cuda

}  // namespace moegrad
