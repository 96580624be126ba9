#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <numeric>
#include <type_traits>
#include <vector>

#include "core/ops/cpu_loop.h"
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

// The elements a tensor spans from its first to its last (its strides are non-negative).
int64_t span(const Tensor& t) {
  int64_t n = 1;
  for (int64_t d = 0; d < t.dim(); ++d) n += (t.size(d) - 1) * t.stride(d);
  return n;
}

// An f32 buffer laid out as t (same strides, offset 0): the GEMM's leading dimensions and
// batch strides hold for it as they do for t.
Tensor f32_like(const Tensor& t) {
  return empty({span(t)}, DType::F32).as_strided(t.shape(), t.strides(), 0);
}

// t's bf16 elements widened to f32 in f32_like(t); the whole span is converted, gaps included,
// which keeps the loop a plain vectorisable pass.
Tensor widen(const Tensor& t) {
  Tensor w = f32_like(t);
  const bf16* src = t.data<bf16>();
  float* dst = w.data<float>();
  const int64_t n = span(t);
#pragma omp parallel for simd schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dst[i] = float(src[i]);
  return w;
}

// bf16 runs as sgemm on operands widened to f32, its f32 result rounded once into g.out.
// Not cblas_sbgemm: the distributions' OpenBLAS (0.3.21 here) is built without it, and its
// generic kernel is slow on CPUs without AVX512-BF16.
GemmBatch widened(const GemmBatch& g) {
  GemmBatch w = g;
  w.a = widen(g.a);
  w.b = widen(g.b);
  w.out = f32_like(g.out);
  return w;
}

template <typename T>
void run_gemm(const GemmBatch& g) {
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
}

// Each problem's multiply-adds.
int64_t work(const GemmBatch& g) { return g.m * g.n * g.k; }

// Small problems (an expert's few rows) spread over threads, as a batch's. So do large ones when
// there are enough of them that the threads stay busy to the end (at least two a thread, none
// more than a thread's share): whole GEMMs on separate threads, largest first, beat each GEMM
// split inside OpenBLAS (on 2 threads, tiny.cfg's and small.cfg's training steps ran 7-10%
// faster). Otherwise they run in turn, each threaded inside OpenBLAS. Which way runs depends
// only on the sizes and the thread count, so results stay the same run to run (OpenBLAS may
// block a long sum differently on one thread than on several).
void run_grouped(const GroupedGemm& problems) {
  int64_t total = 0, largest = 0;
  for (const GemmBatch& g : problems) {
    total += work(g);
    largest = std::max(largest, work(g));
  }
  const int64_t count = int64_t(problems.size()), threads = omp_get_max_threads();
  const bool balanced = threads > 1 && count >= 2 * threads && largest * threads <= total;
  if (total <= kSingleThreadGemm || (largest > kSingleThreadGemm && !balanced)) {
    for (const GemmBatch& g : problems) gemm(g);
    return;
  }
  std::vector<size_t> order(problems.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return work(problems[x]) > work(problems[y]); });
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < count; ++i) gemm(problems[order[size_t(i)]]);
}

}  // namespace

void gemm(const GemmBatch& g) {
  dispatch_compute(g.out.dtype(), "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bf16>) {
      const GemmBatch w = widened(g);
      run_gemm<float>(w);
      g.out.copy_(w.out);
    } else {
      run_gemm<T>(g);
    }
  });
}

// bf16 problems are all widened first, so that the threads of the f32 run allocate nothing.
void grouped_gemm(const GroupedGemm& problems) {
  if (problems.empty() || problems[0].out.dtype() != DType::BF16) {
    run_grouped(problems);
    return;
  }
  GroupedGemm wide;
  for (const GemmBatch& g : problems) wide.push_back(widened(g));
  run_grouped(wide);
  for (size_t i = 0; i < problems.size(); ++i) problems[i].out.copy_(wide[i].out);
}

}  // namespace moegrad::cpu
