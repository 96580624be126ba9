#include <cblas.h>

#include <algorithm>

#include "core/ops/matmul.h"

namespace moegrad::cpu {
namespace {

// OpenBLAS runs a GEMM of up to this many multiply-adds on one thread (65536 times its default
// GEMM_MULTITHREAD_THRESHOLD of 4). A batch of such GEMMs is spread over OpenMP threads
// instead, once the batch as a whole is past the same mark (below it, starting the threads
// costs more than they save); larger GEMMs run one after another, each threaded inside
// OpenBLAS. The OpenMP build of OpenBLAS stays single-threaded inside a parallel region, so
// threads never nest, and every GEMM runs the same code whatever the batch size.
constexpr int64_t kSingleThreadGemm = 64 * 64 * 64;

CBLAS_TRANSPOSE op(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

void blas_gemm(const GemmBatch& g, const float* a, const float* b, float* c) {
  cblas_sgemm(CblasRowMajor, op(g.trans_a), op(g.trans_b), int(g.m), int(g.n), int(g.k), 1.0f, a,
              int(g.lda), b, int(g.ldb), 0.0f, c, int(g.n));
}

void blas_gemm(const GemmBatch& g, const double* a, const double* b, double* c) {
  cblas_dgemm(CblasRowMajor, op(g.trans_a), op(g.trans_b), int(g.m), int(g.n), int(g.k), 1.0, a,
              int(g.lda), b, int(g.ldb), 0.0, c, int(g.n));
}

}  // namespace

void gemm(const GemmBatch& g) {
  dispatch_float(g.out.dtype(), "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* a = g.a.data<T>();
    const T* b = g.b.data<T>();
    T* c = g.out.data<T>();
    auto one = [&](int64_t i) {
      int64_t oa = 0, ob = 0, oc = 0;
      for (int64_t d = int64_t(g.batch.size()) - 1; d >= 0; --d) {
        int64_t j = i % g.batch[d];
        i /= g.batch[d];
        oa += j * g.stride_a[d];
        ob += j * g.stride_b[d];
        oc += j * g.stride_out[d];
      }
      blas_gemm(g, a + oa, b + ob, c + oc);
    };
    int64_t count = shape_numel(g.batch);
    int64_t work = g.m * g.n * g.k;
    if (work <= kSingleThreadGemm && count * work > kSingleThreadGemm) {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < count; ++i) one(i);
    } else {
      for (int64_t i = 0; i < count; ++i) one(i);
    }
  });
}

// The same threading rule as a batch: small problems (an expert's few rows) spread over
// threads, large ones run in turn, each threaded inside OpenBLAS.
void grouped_gemm(const GroupedGemm& problems) {
  int64_t total = 0, largest = 0;
  for (const GemmBatch& g : problems) {
    total += g.m * g.n * g.k;
    largest = std::max(largest, g.m * g.n * g.k);
  }
  const int64_t count = int64_t(problems.size());
  if (largest <= kSingleThreadGemm && total > kSingleThreadGemm) {
#pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < count; ++i) gemm(problems[size_t(i)]);
  } else {
    for (const GemmBatch& g : problems) gemm(g);
  }
}

}  // namespace moegrad::cpu
