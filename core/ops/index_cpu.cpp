#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/ops/cpu_loop.h"
#include "core/ops/index.h"

namespace moegrad::cpu {
namespace {

// A stable counting sort of n values in [0, groups): first (groups + 1 entries, zeroed) gets
// where each value's run starts, positions[first[v] .. first[v + 1]) the positions holding v,
// in increasing order.
template <typename I, typename P>
void counting_sort(const I* values, int64_t n, int64_t groups, int64_t* first, P* positions) {
  for (int64_t j = 0; j < n; ++j) ++first[int64_t(values[j]) + 1];
  for (int64_t v = 0; v < groups; ++v) first[v + 1] += first[v];
  std::vector<int64_t> next(first, first + groups);
  for (int64_t j = 0; j < n; ++j) positions[next[size_t(values[j])]++] = P(j);
}

}  // namespace

void index_min_max(const Tensor& idx, int64_t& lo, int64_t& hi) {
  dispatch_index(idx.dtype(), "index_min_max", [&](auto tag) {
    using I = typename decltype(tag)::type;
    Tensor c = idx.contiguous();
    const I* p = c.data<I>();
    int64_t n = c.numel(), mn = std::numeric_limits<int64_t>::max(),
            mx = std::numeric_limits<int64_t>::min();
#pragma omp parallel for reduction(min : mn) reduction(max : mx) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      mn = std::min<int64_t>(mn, p[i]);
      mx = std::max<int64_t>(mx, p[i]);
    }
    lo = mn;
    hi = mx;
  });
}

void group_by_index(const Tensor& idx, const Tensor& order, const Tensor& row,
                    const Tensor& summary) {
  const int64_t groups = summary.numel() - 3, n = idx.numel(), k = idx.size(1);
  int64_t* s = summary.data<int64_t>();
  index_min_max(idx, s[groups + 1], s[groups + 2]);
  if (s[groups + 1] < 0 || s[groups + 2] >= groups) return;  // the caller throws
  std::fill(s, s + groups + 1, 0);
  int32_t* o = order.data<int32_t>();
  dispatch_index(idx.dtype(), "group_by_index", [&](auto tag) {
    counting_sort(idx.data<typename decltype(tag)::type>(), n, groups, s, o);
  });
  int32_t* r = row.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) r[i] = int32_t(o[i] / k);
}

void gather(const Tensor& out, const Tensor& x, const Tensor& idx, int64_t x_dim_stride) {
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_index(idx.dtype(), "gather", [&](auto itag) {
      using I = typename decltype(itag)::type;
      T* o = out.data<T>();
      const T* xp = x.data<T>();
      const I* ip = idx.data<I>();
      strided_loop<3>(out.shape(), {out.strides(), x.strides(), idx.strides()},
                      [&](int64_t n, const std::array<int64_t, 3>& off,
                          const std::array<int64_t, 3>& st) {
                        T* oq = o + off[0];
                        const T* xq = xp + off[1];
                        const I* iq = ip + off[2];
                        for (int64_t i = 0; i < n; ++i)
                          oq[i * st[0]] = xq[i * st[1] + int64_t(iq[i * st[2]]) * x_dim_stride];
                      });
    });
  });
}

void index_add(const Tensor& out, const Tensor& idx, const Tensor& src) {
  dispatch_summable(out.dtype(), "index_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bf16>) {
      // Each output element sums its contributions in f32 and is rounded once, as the CUDA
      // kernel does in a register: the rows are added in f32 copies.
      Tensor wide = out.to(DType::F32);
      index_add(wide, idx, src.to(DType::F32));
      out.copy_(wide);
    } else {
      dispatch_index(idx.dtype(), "index_add", [&](auto itag) {
        using I = typename decltype(itag)::type;
        const int64_t outer = out.size(0), rows = out.size(1), inner = out.size(2),
                      n = idx.numel();
        const I* ip = idx.data<I>();
        // The source rows of each output row, in index order (a stable counting sort): a thread
        // owns whole output rows and adds their source rows one after another, each element
        // in index order as the header promises, without races. (Column slabs of every row,
        // one a thread, took each row in pieces: bench_elementwise's index_add_to_zeros ran at
        // 6.2 GB/s, now 12.5.)
        std::vector<int64_t> first(size_t(rows) + 1, 0), sources(static_cast<size_t>(n));
        counting_sort(ip, n, rows, first.data(), sources.data());
        T* o = out.data<T>();
        const T* s = src.data<T>();
#pragma omp parallel for schedule(static) if (outer * n * inner >= kParallelGrain)
        for (int64_t task = 0; task < outer * rows; ++task) {
          const int64_t b = task / rows, r = task % rows;
          T* dst = o + task * inner;
          for (int64_t p = first[size_t(r)]; p < first[size_t(r) + 1]; ++p) {
            const T* row = s + (b * n + sources[size_t(p)]) * inner;
#pragma omp simd
            for (int64_t h = 0; h < inner; ++h) dst[h] += row[h];
          }
        }
      });
    }
  });
}

void scatter_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  dispatch_summable(out.dtype(), "scatter_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    dispatch_index(idx.dtype(), "scatter_add", [&](auto itag) {
      using I = typename decltype(itag)::type;
      // One line = the elements of idx along dim at fixed other coordinates. Lines write to
      // disjoint output elements, so they run in parallel; within a line, in index order.
      Shape lines = idx.shape();
      const int64_t m = lines[dim];
      lines[dim] = 1;
      const int64_t os = out.stride(dim), is = idx.stride(dim), ss = src.stride(dim);
      T* o = out.data<T>();
      const I* ip = idx.data<I>();
      const T* sp = src.data<T>();
      strided_loop<3>(lines, {out.strides(), idx.strides(), src.strides()},
                      [&](int64_t n, const std::array<int64_t, 3>& off,
                          const std::array<int64_t, 3>& st) {
                        for (int64_t r = 0; r < n; ++r) {
                          T* oq = o + off[0] + r * st[0];
                          const I* iq = ip + off[1] + r * st[1];
                          const T* sq = sp + off[2] + r * st[2];
                          for (int64_t j = 0; j < m; ++j) {
                            T& dst = oq[int64_t(iq[j * is]) * os];
                            dst = T(C(dst) + C(sq[j * ss]));
                          }
                        }
                      });
    });
  });
}

}  // namespace moegrad::cpu
