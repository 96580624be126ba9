#include <algorithm>
#include <numeric>
#include <vector>

#include "core/ops/cpu_loop.h"
#include "core/ops/topk.h"
#include "core/ops/topk_op.h"

namespace moegrad::cpu {

// Per row: a partial sort of the positions, O(n log k).
void topk(const Tensor& values, const Tensor& indices, const Tensor& x) {
  dispatch_float(x.dtype(), "topk", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t rows = x.size(0), n = x.size(1), k = values.size(1);
    const T* xp = x.data<T>();
    T* vp = values.data<T>();
    int64_t* ip = indices.data<int64_t>();
#pragma omp parallel if (rows * n >= kParallelGrain)
    {
      std::vector<int64_t> order(n);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const T* row = xp + r * n;
        std::iota(order.begin(), order.end(), int64_t(0));
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [row](int64_t a, int64_t b) { return topk_before(row[a], a, row[b], b); });
        for (int64_t j = 0; j < k; ++j) {
          vp[r * k + j] = row[order[j]];
          ip[r * k + j] = order[j];
        }
      }
    }
  });
}

}  // namespace moegrad::cpu
