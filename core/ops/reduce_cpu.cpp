#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/ops/cpu_loop.h"
#include "core/ops/cpu_math.h"
#include "core/ops/reduce.h"
#include "core/ops/reduce_op.h"

namespace moegrad::cpu {
namespace {

// A row is cut into blocks of this many elements that are reduced separately and folded left
// to right, so its result is the same whether its blocks run on one thread or on many.
constexpr int64_t kRowBlock = 16384;
// Outputs reduced side by side when walking columns: enough to vectorise over, and their
// accumulators stay in L1.
constexpr int64_t kColumns = 64;

// Elements [begin, end) of one row. kLanes accumulators break the dependency chain of the fold
// and let the compiler vectorise across them; they are merged in a fixed order.
constexpr int kLanes = 8;

// logsumexp's accumulator of a contiguous run: its maximum, then its sum of exp(x - max), each
// one vectorised pass, instead of the reducer's branch and rescale per element. An infinite
// maximum m makes exp(x - m) NaN where x == m: those count as exp(0), NaNs as NaN, the rest 0.
template <typename T>
MaxSum<T> max_sum_run(const T* x, int64_t n) {
  const T m = row_max(x, n);
  if (!std::isinf(m)) return {m, sum_exp(x, n, m)};
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i] == m ? 1.0 : (x[i] != x[i] ? double(NAN) : 0.0);
  return {m, s};
}

template <typename Red, typename T>
typename Red::Acc reduce_run(const Red& red, const T* p, int64_t begin, int64_t end,
                             int64_t stride) {
  using Acc = typename Red::Acc;
  // The vectorised passes read f32 or f64; bf16 takes the reducer's steps.
  if constexpr (std::is_same_v<Red, LogSumExpReducer<T>> && !std::is_same_v<T, bf16>) {
    if (stride == 1) return max_sum_run(p + begin, end - begin);
  }
  Acc a[kLanes];
  for (int k = 0; k < kLanes; ++k) a[k] = red.identity();
  int64_t r = begin;
  if (stride == 1) {
    for (; r + kLanes <= end; r += kLanes)
      for (int k = 0; k < kLanes; ++k) a[k] = red.step(a[k], p[r + k], r + k);
  } else {
    for (; r + kLanes <= end; r += kLanes)
      for (int k = 0; k < kLanes; ++k) a[k] = red.step(a[k], p[(r + k) * stride], r + k);
  }
  for (; r < end; ++r) a[0] = red.step(a[0], p[r * stride], r);
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int k = 0; k < w; ++k) a[k] = red.combine(a[k], a[k + w]);
  return a[0];
}

// One output per row of R elements read with stride sr.
template <typename Red, typename T>
void reduce_rows(const Red& red, const T* x, const ReduceLayout& L) {
  using Acc = typename Red::Acc;
  int64_t rows = L.outer * L.inner;
  int64_t blocks = std::max<int64_t>(1, (L.R + kRowBlock - 1) / kRowBlock);
  bool parallel = rows * L.R >= kParallelGrain;
  auto block = [&](int64_t j, int64_t b) {
    return reduce_run(red, x + L.base(j), b * kRowBlock, std::min(L.R, (b + 1) * kRowBlock), L.sr);
  };
  if (blocks == 1 || rows >= 64) {
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t j = 0; j < rows; ++j) {
      Acc a = block(j, 0);
      for (int64_t b = 1; b < blocks; ++b) a = red.combine(a, block(j, b));
      red.write(j, a);
    }
    return;
  }
  // Few long rows: spread their blocks over the threads instead.
  std::vector<Acc> part(rows * blocks);
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t k = 0; k < rows * blocks; ++k) part[k] = block(k / blocks, k % blocks);
  for (int64_t j = 0; j < rows; ++j) {
    Acc a = part[j * blocks];
    for (int64_t b = 1; b < blocks; ++b) a = red.combine(a, part[j * blocks + b]);
    red.write(j, a);
  }
}

// kColumns neighbouring outputs at a time, stepping down R together: the inner loop runs
// over outputs, contiguous in memory when si == 1.
template <typename Red, typename T>
void reduce_columns(const Red& red, const T* x, const ReduceLayout& L) {
  using Acc = typename Red::Acc;
  int64_t chunks = (L.inner + kColumns - 1) / kColumns;
  bool parallel = L.outer * L.R * L.inner >= kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t t = 0; t < L.outer * chunks; ++t) {
    int64_t o = t / chunks, i0 = (t % chunks) * kColumns;
    int64_t w = std::min(kColumns, L.inner - i0);
    Acc a[kColumns];
    for (int64_t k = 0; k < w; ++k) a[k] = red.identity();
    const T* p = x + o * L.so + i0 * L.si;
    for (int64_t r = 0; r < L.R; ++r, p += L.sr) {
      if (L.si == 1) {
        for (int64_t k = 0; k < w; ++k) a[k] = red.step(a[k], p[k], r);
      } else {
        for (int64_t k = 0; k < w; ++k) a[k] = red.step(a[k], p[k * L.si], r);
      }
    }
    for (int64_t k = 0; k < w; ++k) red.write(o * L.inner + i0 + k, a[k]);
  }
}

template <typename Red, typename T>
void run(const Red& red, const Tensor& x) {
  ReduceLayout L = reduce_layout(x);
  if (L.inner == 1 || (L.sr == 1 && L.R > 1)) {
    reduce_rows(red, x.data<T>(), L);
  } else {
    reduce_columns(red, x.data<T>(), L);
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& out, const Tensor& x) {
  dispatch_compute(x.dtype(), "reduce", [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_reducer(op, out.data<T>(), x.size(1), [&](auto red) { run<decltype(red), T>(red, x); });
  });
}

void argmax(const Tensor& values, const Tensor& indices, const Tensor& x) {
  dispatch_compute(x.dtype(), "argmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    run<ArgMaxReducer<T>, T>({values.data<T>(), indices.data<int64_t>()}, x);
  });
}

}  // namespace moegrad::cpu
