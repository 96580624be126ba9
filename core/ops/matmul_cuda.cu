#include <cublas_v2.h>

#include <climits>

#include "core/cuda/cublas.h"
#include "core/cuda/runtime.h"
#include "core/ops/matmul.h"

namespace moegrad::cuda {
namespace {

// cuBLAS is column-major, and a row-major matrix read column-major is its transpose. So the
// row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: the same
// buffers and transpose flags, with the operands swapped and M, N exchanged.
cublasStatus_t gemm_strided(cublasHandle_t h, const GemmBatch& g, const float* a, long long sa,
                            const float* b, long long sb, float* c, long long sc, int count) {
  const float one = 1.0f, zero = 0.0f;
  return cublasSgemmStridedBatched(h, g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                   g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, int(g.n), int(g.m),
                                   int(g.k), &one, b, int(g.ldb), sb, a, int(g.lda), sa, &zero, c,
                                   int(g.n), sc, count);
}

cublasStatus_t gemm_strided(cublasHandle_t h, const GemmBatch& g, const double* a, long long sa,
                            const double* b, long long sb, double* c, long long sc, int count) {
  const double one = 1.0, zero = 0.0;
  return cublasDgemmStridedBatched(h, g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                   g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, int(g.n), int(g.m),
                                   int(g.k), &one, b, int(g.ldb), sb, a, int(g.lda), sa, &zero, c,
                                   int(g.n), sc, count);
}

}  // namespace

void gemm(const GemmBatch& g) {
  cublasHandle_t h = cublas_handle(g.out.device().index);
  // The innermost (collapsed) batch dim is one strided-batched call; outer dims, left only
  // where the operands' batch strides do not line up, loop here.
  int64_t inner = g.batch.empty() ? 1 : g.batch.back();
  int64_t outer = shape_numel(g.batch) / inner;
  MOEGRAD_CHECK(inner <= INT_MAX, "matmul: batch of ", inner, " exceeds cuBLAS's 32-bit limit");
  long long sa = g.batch.empty() ? 0 : g.stride_a.back();
  long long sb = g.batch.empty() ? 0 : g.stride_b.back();
  long long sc = g.batch.empty() ? 0 : g.stride_out.back();
  dispatch_float(g.out.dtype(), "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (int64_t i = 0; i < outer; ++i) {
      int64_t oa = 0, ob = 0, oc = 0;
      for (int64_t d = int64_t(g.batch.size()) - 2, r = i; d >= 0; --d) {
        int64_t j = r % g.batch[d];
        r /= g.batch[d];
        oa += j * g.stride_a[d];
        ob += j * g.stride_b[d];
        oc += j * g.stride_out[d];
      }
      MOEGRAD_CUBLAS_CHECK(gemm_strided(h, g, g.a.data<T>() + oa, sa, g.b.data<T>() + ob, sb,
                                        g.out.data<T>() + oc, sc, int(inner)));
    }
  });
}

}  // namespace moegrad::cuda
