#include <algorithm>
#include <vector>

#include "core/ops/multi_tensor.h"

namespace moegrad::cpu {
namespace {

// Elements per partial sum: the partials, and so the result, do not depend on the thread count.
constexpr int64_t kChunk = 1 << 16;

// x[0..n)'s squares summed in f64 by eight running sums, added pairwise at the end: one sum's
// chain of dependent additions read a third as fast as memory does. The lanes are fixed by
// the source, so the order, and the bits, do not depend on the vector width the compiler picks.
template <typename T, typename C>
double squares(const T* x, int64_t n) {
  constexpr int64_t kLanes = 8;
  double lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) {
      const double v = double(C(x[i + j]));
      lane[j] += v * v;
    }
  for (; i < n; ++i) {
    const double v = double(C(x[i]));
    lane[0] += v * v;
  }
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

}  // namespace

void sum_of_squares(const Tensor& out, const std::vector<Tensor>& tensors) {
  dispatch_compute(tensors[0].dtype(), "sum_of_squares", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    // Every chunk's first element and size, in list order.
    std::vector<const T*> chunks;
    std::vector<int64_t> sizes;
    for (const Tensor& t : tensors)
      for (int64_t begin = 0; begin < t.numel(); begin += kChunk) {
        chunks.push_back(t.data<T>() + begin);
        sizes.push_back(std::min(kChunk, t.numel() - begin));
      }
    std::vector<double> partial(chunks.size());
    const int64_t count = int64_t(chunks.size());
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < count; ++c)
      partial[size_t(c)] = squares<T, C>(chunks[size_t(c)], sizes[size_t(c)]);
    double total = out.data<double>()[0];
    for (double p : partial) total += p;
    out.data<double>()[0] = total;
  });
}

void scale_(const std::vector<Tensor>& tensors, double factor) {
  for (const Tensor& t : tensors)
    dispatch_compute(t.dtype(), "scale_", [&](auto tag) {
      using T = typename decltype(tag)::type;
      using C = compute_t<T>;
      T* x = t.data<T>();
      const C f = C(factor);
      const int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (n > kChunk)
      for (int64_t i = 0; i < n; ++i) x[i] = T(C(x[i]) * f);
    });
}

void accumulate_(const std::vector<Tensor>& sums, const std::vector<Tensor>& addends) {
  dispatch_compute(addends[0].dtype(), "accumulate_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // Chunks of every pair, so that one parallel loop spreads many small tensors (a model's
    // experts) over the threads.
    struct Chunk {
      float* sum;
      const T* x;
      int64_t n;
    };
    std::vector<Chunk> chunks;
    for (size_t p = 0; p < sums.size(); ++p)
      for (int64_t begin = 0; begin < sums[p].numel(); begin += kChunk)
        chunks.push_back({sums[p].data<float>() + begin, addends[p].data<T>() + begin,
                          std::min(kChunk, sums[p].numel() - begin)});
    const int64_t count = int64_t(chunks.size());
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < count; ++c) {
      const Chunk& k = chunks[size_t(c)];
#pragma omp simd
      for (int64_t i = 0; i < k.n; ++i) k.sum[i] += float(k.x[i]);
    }
  });
}

}  // namespace moegrad::cpu
