#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "core/ops/cpu_loop.h"
#include "core/ops/topk.h"
#include "core/ops/topk_op.h"

namespace moegrad::cpu {
namespace {

// Up to this k, a row is scanned keeping its k best in order (an MoE router's top-2 of a few
// hundred experts); above it, a partial sort of the positions.
constexpr int64_t kScanK = 16;
// The row is read as kLanes interleaved lanes (element i in lane i % kLanes): one vectorised
// pass finds each lane's maximum.
constexpr int64_t kLanes = 16;

// The k best of row[0, n) into vals / idx, best first. The k-th largest lane maximum t is a
// lower bound of the k-th best value (k distinct elements reach it), so only the elements >= t
// of the lanes whose maximum reaches t need the exact, branchy comparison: about k of them.
template <typename T>
void scan_row(const T* row, int64_t n, int64_t k, T* vals, int64_t* idx) {
  std::fill(idx, idx + k, int64_t(-1));  // empty slots, after every element
  auto offer = [&](int64_t i) {
    const T v = row[i];
    if (!topk_before(v, i, vals[k - 1], idx[k - 1])) return;
    int64_t j = k - 1;
    for (; j > 0 && topk_before(v, i, vals[j - 1], idx[j - 1]); --j) {
      vals[j] = vals[j - 1];
      idx[j] = idx[j - 1];
    }
    vals[j] = v;
    idx[j] = i;
  };
  const int64_t body = n - n % kLanes;
  T lane[kLanes], probe[kLanes];
  for (int64_t c = 0; c < kLanes; ++c) {
    lane[c] = -T(INFINITY);
    probe[c] = T(0);
  }
  for (int64_t i = 0; i < body; i += kLanes) {
    for (int64_t c = 0; c < kLanes; ++c) {
      const T v = row[i + c];
      lane[c] = v > lane[c] ? v : lane[c];
      probe[c] += v * T(0);  // NaN once a NaN or an infinity passed (the maxima skip NaNs)
    }
  }
  T probe_sum = T(0);
  for (int64_t c = 0; c < kLanes; ++c) probe_sum += probe[c];
  if (probe_sum != probe_sum) {  // rare: every element takes the exact comparison
    for (int64_t i = 0; i < n; ++i) offer(i);
    return;
  }
  // t: the next largest lane maximum below the last, until k lanes are counted. A +inf lane is
  // never counted, which only lowers t.
  T t = T(INFINITY);
  for (int64_t counted = 0; counted < k && t != -T(INFINITY);) {
    T m = -T(INFINITY);
    for (int64_t c = 0; c < kLanes; ++c) m = (lane[c] < t && lane[c] > m) ? lane[c] : m;
    for (int64_t c = 0; c < kLanes; ++c) counted += lane[c] == m;
    t = m;
  }
  for (int64_t c = 0; c < kLanes; ++c) {
    if (lane[c] < t) continue;
    for (int64_t i = c; i < body; i += kLanes)
      if (!(row[i] < t)) offer(i);
  }
  for (int64_t i = body; i < n; ++i) offer(i);
}

// A partial sort of the row's positions: O(n log k).
template <typename T>
void sort_row(const T* row, int64_t n, int64_t k, T* vals, int64_t* idx,
              std::vector<int64_t>& order) {
  order.resize(n);
  std::iota(order.begin(), order.end(), int64_t(0));
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [row](int64_t a, int64_t b) { return topk_before(row[a], a, row[b], b); });
  for (int64_t j = 0; j < k; ++j) {
    vals[j] = row[order[j]];
    idx[j] = order[j];
  }
}

template <typename T>
void run_topk(const Tensor& values, const Tensor& indices, const Tensor& x) {
  const int64_t rows = x.size(0), n = x.size(1), k = values.size(1);
  const T* xp = x.data<T>();
  T* vp = values.data<T>();
  int64_t* ip = indices.data<int64_t>();
#pragma omp parallel if (rows * n >= kParallelGrain)
  {
    std::vector<int64_t> order;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) topk_row(xp + r * n, n, k, vp + r * k, ip + r * k, order);
  }
}

}  // namespace

template <typename T>
void topk_row(const T* row, int64_t n, int64_t k, T* vals, int64_t* idx,
              std::vector<int64_t>& order) {
  if (k <= kScanK) {
    scan_row(row, n, k, vals, idx);
  } else {
    sort_row(row, n, k, vals, idx, order);
  }
}
template void topk_row(const float*, int64_t, int64_t, float*, int64_t*, std::vector<int64_t>&);
template void topk_row(const double*, int64_t, int64_t, double*, int64_t*,
                       std::vector<int64_t>&);

// bf16 runs on an f32 copy (the caller's workspace): widening is exact, so are the values
// rounded back, and the order is the same as the CUDA kernel's, which compares in f32 too.
void topk(const Tensor& values, const Tensor& indices, const Tensor& x) {
  dispatch_compute(x.dtype(), "topk", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bf16>) {
      Tensor v = empty(values.shape(), DType::F32);
      run_topk<float>(v, indices, x.to(DType::F32));
      values.copy_(v);
    } else {
      run_topk<T>(values, indices, x);
    }
  });
}

}  // namespace moegrad::cpu
