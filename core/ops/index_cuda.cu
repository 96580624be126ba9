#include <cuda_runtime.h>

#include <climits>
#include <cub/device/device_radix_sort.cuh>

#include "core/cuda/strided.cuh"
#include "core/ops/index.h"

namespace moegrad::cuda {
namespace {

// Integer atomics only: the min and max do not depend on the order the warps arrive in.
template <typename I>
__global__ void min_max_kernel(const I* idx, int64_t n, StridedIndex<1> ix, long long* result) {
  long long lo = LLONG_MAX, hi = LLONG_MIN;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[1];
    ix.offsets(i, off);
    long long v = idx[off[0]];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  for (int s = 16; s > 0; s >>= 1) {
    long long l = __shfl_down_sync(0xffffffffu, lo, s), h = __shfl_down_sync(0xffffffffu, hi, s);
    lo = l < lo ? l : lo;
    hi = h > hi ? h : hi;
  }
  if ((threadIdx.x & 31) == 0) {
    atomicMin(&result[0], lo);
    atomicMax(&result[1], hi);
  }
}

template <typename T, typename I>
__global__ void gather_kernel(T* out, const T* x, const I* idx, int64_t x_dim_stride, int64_t n,
                              StridedIndex<3> ix) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    ix.offsets(i, off);
    out[off[0]] = x[off[1] + int64_t(idx[off[2]]) * x_dim_stride];
  }
}

__global__ void iota_kernel(int32_t* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = int32_t(i);
}

// start[v] = first position in the sorted keys holding a key >= v, for v in [0, rows].
template <typename I, typename S>
__global__ void segment_start_kernel(const I* sorted, int64_t n, int64_t rows, S* start) {
  for (int64_t v = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; v <= rows;
       v += int64_t(gridDim.x) * blockDim.x) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
      int64_t mid = (lo + hi) / 2;
      if (int64_t(sorted[mid]) < v) lo = mid + 1; else hi = mid;
    }
    start[v] = S(lo);
  }
}

__global__ void min_max_init_kernel(long long* result) {
  result[0] = LLONG_MAX;
  result[1] = LLONG_MIN;
}

__global__ void row_of_kernel(const int32_t* order, int32_t* row, int64_t n, int32_t k) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    row[i] = order[i] / k;
}

// One thread per V consecutive output elements of a row (V divides the row) sums their segment
// of source rows, in index order, in compute_t<T> (bf16 rounded once at the end, as the CPU
// does), each row's V elements loaded as one vector. Under 2^31 output vectors (Narrow) the
// vector's (batch, row, column) come from 32-bit multiply-and-shift divisions; `inner` and
// `total` count vectors.
template <typename T, bool Narrow, int V>
__global__ void index_add_kernel(T* out, const T* src, const int32_t* perm, const int32_t* start,
                                 FastDivmod rows, int64_t n, FastDivmod inner, int64_t total) {
  using C = compute_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t h, v, b;
    if constexpr (Narrow) {
      const uint32_t row = inner.div(uint32_t(i)), batch = rows.div(row);
      h = int64_t(uint32_t(i) - row * inner.divisor());
      v = int64_t(row - batch * rows.divisor());
      b = batch;
    } else {
      const int64_t row = i / inner.divisor();
      h = i % inner.divisor();
      v = row % rows.divisor();
      b = row / rows.divisor();
    }
    const Vector<T, V> before = load_vector<V>(out + i * V);
    C acc[V];
MOEGRAD_UNROLL
    for (int j = 0; j < V; ++j) acc[j] = C(before.v[j]);
    // Unrolled so that several rows' loads are in flight; the sums keep their order.
#pragma unroll 4
    for (int32_t p = start[v]; p < start[v + 1]; ++p) {
      const Vector<T, V> x =
          load_vector<V>(src + ((b * n + perm[p]) * int64_t(inner.divisor()) + h) * V);
MOEGRAD_UNROLL
      for (int j = 0; j < V; ++j) acc[j] += C(x.v[j]);
    }
    Vector<T, V> after;
MOEGRAD_UNROLL
    for (int j = 0; j < V; ++j) after.v[j] = T(acc[j]);
    store_vector<V>(out + i * V, after);
  }
}

// One thread per line of idx along dim: lines write to disjoint outputs, so no atomics. Each
// addition is rounded to T, as on the CPU.
template <typename T, typename I>
__global__ void scatter_add_kernel(T* out, const I* idx, const T* src, int64_t m, int64_t os,
                                   int64_t is, int64_t ss, int64_t lines, StridedIndex<3> ix) {
  using C = compute_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < lines;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    ix.offsets(i, off);
    for (int64_t j = 0; j < m; ++j) {
      T& dst = out[off[0] + int64_t(idx[off[1] + j * is]) * os];
      dst = T(C(dst) + C(src[off[2] + j * ss]));
    }
  }
}

// result[0] = min and result[1] = max of idx (on the device, not waited for).
void launch_min_max(const Tensor& idx, int64_t* result, cudaStream_t s) {
  const int64_t n = idx.numel();
  auto ix = make_strided_index<1>(idx.shape(), {idx.strides()});
  long long* r = reinterpret_cast<long long*>(result);
  min_max_init_kernel<<<1, 1, 0, s>>>(r);
  MOEGRAD_CUDA_CHECK_LAUNCH();
  dispatch_index(idx.dtype(), "index_min_max", [&](auto tag) {
    using I = typename decltype(tag)::type;
    unsigned blocks = std::min<unsigned>(grid_for(n), 1024);
    min_max_kernel<I><<<blocks, kBlock, 0, s>>>(idx.data<I>(), n, ix, r);
    MOEGRAD_CUDA_CHECK_LAUNCH();
  });
}

// The positions 0..n-1 of idx (contiguous, n < 2^31, values in [0, values)) sorted by value
// into perm, stably (a radix sort over the values' low bits, so equal values keep their
// position order), and start[v] for v in [0, values]: where value v's run begins in perm. A
// value out of range leaves perm and start meaningless but in bounds.
template <typename S>
void sort_runs(const Tensor& idx, int64_t values, int32_t* perm, S* start, cudaStream_t s) {
  const int64_t n = idx.numel();
  const Device dev = idx.device();
  int end_bit = 1;
  while ((int64_t(1) << end_bit) < values) ++end_bit;
  Tensor perm_in = empty({n}, DType::I32, dev), sorted = empty({n}, idx.dtype(), dev);
  iota_kernel<<<grid_for(n), kBlock, 0, s>>>(perm_in.data<int32_t>(), n);
  MOEGRAD_CUDA_CHECK_LAUNCH();
  dispatch_index(idx.dtype(), "sort_runs", [&](auto itag) {
    using I = typename decltype(itag)::type;
    size_t bytes = 0;
    MOEGRAD_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, idx.data<I>(),
                                                       sorted.data<I>(), perm_in.data<int32_t>(),
                                                       perm, int(n), 0, end_bit, s));
    Tensor temp = empty({int64_t(bytes / 8 + 1)}, DType::I64, dev);
    MOEGRAD_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data_ptr(), bytes, idx.data<I>(),
                                                       sorted.data<I>(), perm_in.data<int32_t>(),
                                                       perm, int(n), 0, end_bit, s));
    segment_start_kernel<I, S>
        <<<grid_for(values + 1), kBlock, 0, s>>>(sorted.data<I>(), n, values, start);
    MOEGRAD_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

void index_min_max(const Tensor& idx, int64_t& lo, int64_t& hi) {
  Tensor result = empty({2}, DType::I64, idx.device());
  launch_min_max(idx, result.data<int64_t>(), stream(idx.device().index));
  std::vector<int64_t> v = result.to_vector<int64_t>();
  lo = v[0];
  hi = v[1];
}

// The range goes back with the starts in one copy: the caller checks it before using either.
void group_by_index(const Tensor& idx, const Tensor& order, const Tensor& row,
                    const Tensor& summary) {
  const int64_t groups = summary.numel() - 3, n = idx.numel();
  cudaStream_t s = stream(idx.device().index);
  int64_t* sum = summary.data<int64_t>();
  launch_min_max(idx, sum + groups + 1, s);
  sort_runs(idx, groups, order.data<int32_t>(), sum, s);
  row_of_kernel<<<grid_for(n), kBlock, 0, s>>>(order.data<int32_t>(), row.data<int32_t>(), n,
                                               int32_t(idx.size(1)));
  MOEGRAD_CUDA_CHECK_LAUNCH();
}

void gather(const Tensor& out, const Tensor& x, const Tensor& idx, int64_t x_dim_stride) {
  int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t s = stream(out.device().index);
  auto run = [&](auto tag, const Shape& shape, const Shape& out_strides, const Shape& x_strides,
                 int64_t dim_stride) {
    using T = decltype(tag);
    auto ix = make_strided_index<3>(shape, {out_strides, x_strides, idx.strides()});
    dispatch_index(idx.dtype(), "gather", [&](auto itag) {
      using I = typename decltype(itag)::type;
      gather_kernel<T, I><<<grid_for(shape_numel(shape)), kBlock, 0, s>>>(
          static_cast<T*>(out.data_ptr()), static_cast<const T*>(x.data_ptr()), idx.data<I>(),
          dim_stride, shape_numel(shape), ix);
      MOEGRAD_CUDA_CHECK_LAUNCH();
    });
  };
  // Rows picked whole (the index constant along a contiguous last dim of out and x) move as
  // 16-byte elements when every stride and address allows: a thread copies a vector, not one
  // element.
  const int64_t v = 16 / int64_t(dtype_size(out.dtype())), last = out.dim() - 1;
  bool vectors = last >= 0 && out.size(last) % v == 0 && out.stride(last) == 1 &&
                 x.stride(last) == 1 && idx.stride(last) == 0 && x_dim_stride % v == 0 &&
                 vector_aligned(int(v), {{out.data_ptr(), dtype_size(out.dtype())},
                                         {x.data_ptr(), dtype_size(x.dtype())}});
  for (int64_t d = 0; d < last && vectors; ++d)
    vectors = out.stride(d) % v == 0 && x.stride(d) % v == 0;
  if (vectors) {
    Shape shape = out.shape(), out_strides = out.strides(), x_strides = x.strides();
    shape[size_t(last)] /= v;
    for (int64_t d = 0; d < last; ++d) {
      out_strides[size_t(d)] /= v;
      x_strides[size_t(d)] /= v;
    }
    run(uint4{}, shape, out_strides, x_strides, x_dim_stride / v);
    return;
  }
  dispatch_all(out.dtype(), [&](auto tag) {
    run(typename decltype(tag)::type{}, out.shape(), out.strides(), x.strides(), x_dim_stride);
  });
}

// Sorts the row indices (a stable radix sort, so equal rows keep their index order), finds
// where each row's run starts, then sums each output element's run without atomics.
void index_add(const Tensor& out, const Tensor& idx, const Tensor& src) {
  const int64_t rows = out.size(1), inner = out.size(2), n = idx.numel();
  MOEGRAD_CHECK(n <= INT32_MAX && rows < INT32_MAX && inner < INT32_MAX,
                "index_add: CUDA supports at most 2^31 - 1 indices, rows and elements a row, got ",
                n, " indices into ", rows, " rows of ", inner);
  Device dev = out.device();
  cudaStream_t s = stream(dev.index);
  Tensor perm = empty({n}, DType::I32, dev), start = empty({rows + 1}, DType::I32, dev);
  sort_runs(idx, rows, perm.data<int32_t>(), start.data<int32_t>(), s);
  if (out.numel() == 0) return;
  dispatch_summable(out.dtype(), "index_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // 16 bytes of a row a thread when rows split into aligned vectors, else one element.
    with_vector_width<T>(rows_split<T>(inner, {&out, &src}), [&](auto width) {
      constexpr int V = decltype(width)::value;
      const int64_t total = out.numel() / V;
      auto kernel = total < (int64_t(1) << 31) ? index_add_kernel<T, true, V>
                                               : index_add_kernel<T, false, V>;
      kernel<<<grid_for(total), kBlock, 0, s>>>(out.data<T>(), src.data<T>(),
                                                perm.data<int32_t>(), start.data<int32_t>(),
                                                FastDivmod(rows), n, FastDivmod(inner / V), total);
      MOEGRAD_CUDA_CHECK_LAUNCH();
    });
  });
}

void scatter_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  Shape lines = idx.shape();
  const int64_t m = lines[dim];
  lines[dim] = 1;
  int64_t n = shape_numel(lines);
  if (n == 0) return;
  auto ix = make_strided_index<3>(lines, {out.strides(), idx.strides(), src.strides()});
  cudaStream_t s = stream(out.device().index);
  dispatch_summable(out.dtype(), "scatter_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_index(idx.dtype(), "scatter_add", [&](auto itag) {
      using I = typename decltype(itag)::type;
      scatter_add_kernel<T, I><<<grid_for(n), kBlock, 0, s>>>(
          out.data<T>(), idx.data<I>(), src.data<T>(), m, out.stride(dim), idx.stride(dim),
          src.stride(dim), n, ix);
      MOEGRAD_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace moegrad::cuda
