#include <cublas_v2.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

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

// bf16 operands and output, f32 accumulation and f32 alpha and beta (CUBLAS_COMPUTE_32F):
// each output element is rounded to bf16 once.
cublasStatus_t gemm_strided(cublasHandle_t h, const GemmBatch& g, const bf16* a, long long sa,
                            const bf16* b, long long sb, bf16* c, long long sc, int count) {
  const float one = 1.0f, zero = 0.0f;
  return cublasGemmStridedBatchedEx(h, g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                    g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, int(g.n), int(g.m),
                                    int(g.k), &one, b, CUDA_R_16BF, int(g.ldb), sb, a, CUDA_R_16BF,
                                    int(g.lda), sa, &zero, c, CUDA_R_16BF, int(g.n), sc, count,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

cublasStatus_t gemm_grouped(cublasHandle_t h, const cublasOperation_t* ta,
                            const cublasOperation_t* tb, const int* m, const int* n, const int* k,
                            const float* const* a, const int* lda, const float* const* b,
                            const int* ldb, float* const* c, const int* ldc, int count,
                            const int* group_size) {
  const std::vector<float> one(size_t(count), 1.0f), zero(size_t(count), 0.0f);
  return cublasSgemmGroupedBatched(h, ta, tb, m, n, k, one.data(), a, lda, b, ldb, zero.data(), c,
                                   ldc, count, group_size);
}

cublasStatus_t gemm_grouped(cublasHandle_t h, const cublasOperation_t* ta,
                            const cublasOperation_t* tb, const int* m, const int* n, const int* k,
                            const double* const* a, const int* lda, const double* const* b,
                            const int* ldb, double* const* c, const int* ldc, int count,
                            const int* group_size) {
  const std::vector<double> one(size_t(count), 1.0), zero(size_t(count), 0.0);
  return cublasDgemmGroupedBatched(h, ta, tb, m, n, k, one.data(), a, lda, b, ldb, zero.data(), c,
                                   ldc, count, group_size);
}

cublasStatus_t gemm_grouped(cublasHandle_t h, const cublasOperation_t* ta,
                            const cublasOperation_t* tb, const int* m, const int* n, const int* k,
                            const bf16* const* a, const int* lda, const bf16* const* b,
                            const int* ldb, bf16* const* c, const int* ldc, int count,
                            const int* group_size) {
  const std::vector<float> one(size_t(count), 1.0f), zero(size_t(count), 0.0f);
  return cublasGemmGroupedBatchedEx(
      h, ta, tb, m, n, k, one.data(), reinterpret_cast<const void* const*>(a), CUDA_R_16BF, lda,
      reinterpret_cast<const void* const*>(b), CUDA_R_16BF, ldb, zero.data(),
      reinterpret_cast<void* const*>(c), CUDA_R_16BF, ldc, count, group_size, CUBLAS_COMPUTE_32F);
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
  dispatch_compute(g.out.dtype(), "matmul", [&](auto tag) {
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

namespace moegrad::cuda {

namespace {

// Whether cuBLAS may take the problem in a grouped call. Its addresses reach cuBLAS only in a
// device table, so it cannot check them; for 16-bit types its manual requires each matrix
// address 16-byte aligned (4 where k * 2 bytes is not a multiple of 16). Taken as 16 always: a
// view that starts at an odd row (a narrowed group of a small test matrix) may not be.
bool groupable(const GemmBatch& g) {
  if (dtype_size(g.out.dtype()) != 2) return true;
  for (const Tensor* t : {&g.a, &g.b, &g.out})
    if (reinterpret_cast<uintptr_t>(t->data_ptr()) % 16 != 0) return false;
  return true;
}

// Each problem is a group of one, so problems may differ in every size. The sizes stay on the
// host as cuBLAS wants them; the operand addresses go to the device in one table whose upload
// is stream-ordered and does not wait for the GPU. Operands swap as in gemm_strided.
void grouped_call(const GroupedGemm& problems) {
  if (problems.empty()) return;
  const Device device = problems[0].out.device();
  const size_t count = problems.size();
  MOEGRAD_CHECK(count <= size_t(INT_MAX), "grouped_matmul: ", count, " groups");
  std::vector<cublasOperation_t> ta(count), tb(count);
  std::vector<int> m(count), n(count), k(count), lda(count), ldb(count), ldc(count);
  const std::vector<int> group_size(count, 1);
  std::vector<int64_t> addresses(3 * count);
  for (size_t i = 0; i < count; ++i) {
    const GemmBatch& g = problems[i];
    ta[i] = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    tb[i] = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    m[i] = int(g.n);
    n[i] = int(g.m);
    k[i] = int(g.k);
    lda[i] = int(g.ldb);
    ldb[i] = int(g.lda);
    ldc[i] = int(g.n);
    addresses[i] = int64_t(reinterpret_cast<uintptr_t>(g.b.data_ptr()));
    addresses[count + i] = int64_t(reinterpret_cast<uintptr_t>(g.a.data_ptr()));
    addresses[2 * count + i] = int64_t(reinterpret_cast<uintptr_t>(g.out.data_ptr()));
  }
  const Tensor table = from_vector(addresses, {int64_t(3 * count)}).to(device);
  dispatch_compute(problems[0].out.dtype(), "grouped_matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto* base = reinterpret_cast<T* const*>(table.data<int64_t>());
    MOEGRAD_CUBLAS_CHECK(gemm_grouped(cublas_handle(device.index), ta.data(), tb.data(), m.data(),
                                      n.data(), k.data(), base, lda.data(), base + count,
                                      ldb.data(), base + 2 * count, ldc.data(), int(count),
                                      group_size.data()));
  });
}

}  // namespace

void grouped_gemm(const GroupedGemm& problems) {
  if (std::all_of(problems.begin(), problems.end(), groupable)) return grouped_call(problems);
  // A problem cuBLAS cannot take grouped runs alone, where cuBLAS sees its addresses.
  GroupedGemm grouped;
  for (const GemmBatch& g : problems) {
    if (groupable(g)) {
      grouped.push_back(g);
    } else {
      gemm(g);
    }
  }
  grouped_call(grouped);
}

}  // namespace moegrad::cuda
