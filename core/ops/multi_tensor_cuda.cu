#include <cuda_runtime.h>

#include <climits>
#include <vector>

#include "core/cuda/multi_tensor.cuh"
#include "core/cuda/strided.cuh"
#include "core/ops/multi_tensor.h"
#include "core/ops/reduce_cuda.cuh"

namespace moegrad::cuda {
namespace {

// Elements per block; a tensor's blocks cover it in order.
constexpr int64_t kChunk = int64_t(kBlock) * 16;

template <typename T>
struct Slice {
  T* x;
  int64_t n;
  int64_t first_block;  // the launch's blocks before this tensor's first
};

template <typename T>
__device__ __forceinline__ Slice<T> slice_of(const Slice<T>* slices, int count, int64_t b) {
  return slices[slice_of_block(slices, count, b)];
}

// f(i, V) over block b's chunk of slice s: vectors of V elements at i = begin, begin + V, ...
// (a thread every blockDim.x), then the chunk's last partial vector element by element (f(i, 1)).
// With V > 1 every slice starts 16-byte aligned, and a chunk (kChunk elements) starts where a
// vector does.
template <int V, typename F>
__device__ __forceinline__ void for_chunk(int64_t b, int64_t first_block, int64_t n, F&& f) {
  const int64_t begin = (b - first_block) * kChunk;
  const int64_t end = begin + kChunk < n ? begin + kChunk : n;
  const int64_t whole = begin + (end - begin) / V * V;
#pragma unroll 2
  for (int64_t i = begin + int64_t(threadIdx.x) * V; i < whole; i += int64_t(blockDim.x) * V)
    f(i, std::integral_constant<int, V>{});
  for (int64_t i = whole + threadIdx.x; i < end; i += blockDim.x)
    f(i, std::integral_constant<int, 1>{});
}

// partial[b] = the f64 sum of squares of block b's chunk, folded in a fixed tree.
template <int V, typename T>
__global__ void squares_kernel(const Slice<T>* slices, int count, double* partial) {
  __shared__ double sm[1][kBlock];
  const Slice<T> s = slice_of(slices, count, blockIdx.x);
  double acc = 0;
  for_chunk<V>(blockIdx.x, s.first_block, s.n, [&](int64_t i, auto width) {
    constexpr int W = decltype(width)::value;
    const Vector<T, W> x = load_vector<W>(s.x + i);
MOEGRAD_UNROLL
    for (int e = 0; e < W; ++e) {
      const double v = double(compute_t<T>(x.v[e]));
      acc += v * v;
    }
  });
  acc = fold_row<kBlock, 1>(acc, sm, [](double a, double b) { return a + b; });
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// out[0] += the sum of the n partials: each thread adds a fixed stride of them, then one fold.
__global__ void total_kernel(const double* partial, int64_t n, double* out) {
  __shared__ double sm[1][kBlock];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += partial[i];
  acc = fold_row<kBlock, 1>(acc, sm, [](double a, double b) { return a + b; });
  if (threadIdx.x == 0) out[0] += acc;
}

template <int V, typename T>
__global__ void scale_kernel(const Slice<T>* slices, int count, compute_t<T> factor) {
  const Slice<T> s = slice_of(slices, count, blockIdx.x);
  for_chunk<V>(blockIdx.x, s.first_block, s.n, [&](int64_t i, auto width) {
    constexpr int W = decltype(width)::value;
    Vector<T, W> x = load_vector<W>(s.x + i);
MOEGRAD_UNROLL
    for (int e = 0; e < W; ++e) x.v[e] = T(compute_t<T>(x.v[e]) * factor);
    store_vector<W>(s.x + i, x);
  });
}

// sum[i] += x[i] over a pair of tensors: a sum and its addend.
template <typename T>
struct SumSlice {
  float* sum;
  const T* x;
  int64_t n;
  int64_t first_block;
};

template <int V, typename T>
__global__ void accumulate_kernel(const SumSlice<T>* slices, int count) {
  const SumSlice<T> s = slices[slice_of_block(slices, count, blockIdx.x)];
  for_chunk<V>(blockIdx.x, s.first_block, s.n, [&](int64_t i, auto width) {
    constexpr int W = decltype(width)::value;
    Vector<float, W> sum = load_vector<W>(s.sum + i);
    const Vector<T, W> x = load_vector<W>(s.x + i);
MOEGRAD_UNROLL
    for (int e = 0; e < W; ++e) sum.v[e] += float(x.v[e]);
    store_vector<W>(s.sum + i, sum);
  });
}

// Whether every tensor's data is 16-byte aligned: then each starts a vector, whatever its
// share of the 16 bytes.
bool all_aligned(std::initializer_list<const std::vector<Tensor>*> lists) {
  for (const std::vector<Tensor>* list : lists)
    for (const Tensor& t : *list)
      if (reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 != 0) return false;
  return true;
}

// `slices` (their n set; first_block set here) in a table on the device; `blocks` gets the
// launch's block count. The upload is stream-ordered (see copy_bytes).
template <typename S>
Tensor upload_slices(std::vector<S>& slices, Device device, int64_t& blocks) {
  blocks = 0;
  for (S& s : slices) {
    s.first_block = blocks;
    blocks += (s.n + kChunk - 1) / kChunk;
  }
  MOEGRAD_CHECK(blocks <= INT_MAX && slices.size() <= size_t(INT_MAX), "multi-tensor op: ",
                slices.size(), " tensors in ", blocks, " blocks are too many for one launch");
  const size_t bytes = slices.size() * sizeof(S);
  Tensor table = empty({int64_t((bytes + 7) / 8)}, DType::I64, device);
  copy_bytes(table.data_ptr(), device, slices.data(), Device::cpu(), bytes);
  return table;
}

// The slices of `tensors` (contiguous, non-empty, dtype T) in a table on the device.
template <typename T>
Tensor slice_table(const std::vector<Tensor>& tensors, int64_t& blocks, int& count) {
  std::vector<Slice<T>> slices;
  for (const Tensor& t : tensors) slices.push_back({t.data<T>(), t.numel(), 0});
  count = int(slices.size());
  return upload_slices(slices, tensors[0].device(), blocks);
}

}  // namespace

void sum_of_squares(const Tensor& out, const std::vector<Tensor>& tensors) {
  dispatch_compute(tensors[0].dtype(), "sum_of_squares", [&](auto tag) {
    using T = typename decltype(tag)::type;
    int64_t blocks = 0;
    int count = 0;
    const Tensor table = slice_table<T>(tensors, blocks, count);
    const Tensor partial = empty({blocks}, DType::F64, out.device());
    cudaStream_t s = stream(out.device().index);
    with_vector_width<T>(all_aligned({&tensors}), [&](auto width) {
      squares_kernel<decltype(width)::value, T><<<unsigned(blocks), kBlock, 0, s>>>(
          static_cast<const Slice<T>*>(table.data_ptr()), count, partial.data<double>());
    });
    MOEGRAD_CUDA_CHECK_LAUNCH();
    total_kernel<<<1, kBlock, 0, s>>>(partial.data<double>(), blocks, out.data<double>());
    MOEGRAD_CUDA_CHECK_LAUNCH();
  });
}

void scale_(const std::vector<Tensor>& tensors, double factor) {
  // One launch per dtype, over the tensors of that dtype.
  for (DType dt : {DType::F32, DType::F64, DType::BF16}) {
    std::vector<Tensor> group;
    for (const Tensor& t : tensors)
      if (t.dtype() == dt) group.push_back(t);
    if (group.empty()) continue;
    dispatch_compute(dt, "scale_", [&](auto tag) {
      using T = typename decltype(tag)::type;
      int64_t blocks = 0;
      int count = 0;
      const Tensor table = slice_table<T>(group, blocks, count);
      with_vector_width<T>(all_aligned({&group}), [&](auto width) {
        scale_kernel<decltype(width)::value, T>
            <<<unsigned(blocks), kBlock, 0, stream(group[0].device().index)>>>(
                static_cast<const Slice<T>*>(table.data_ptr()), count, compute_t<T>(factor));
      });
      MOEGRAD_CUDA_CHECK_LAUNCH();
    });
  }
}

void accumulate_(const std::vector<Tensor>& sums, const std::vector<Tensor>& addends) {
  dispatch_compute(addends[0].dtype(), "accumulate_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    std::vector<SumSlice<T>> slices;
    for (size_t p = 0; p < sums.size(); ++p)
      slices.push_back({sums[p].data<float>(), addends[p].data<T>(), sums[p].numel(), 0});
    int64_t blocks = 0;
    const Tensor table = upload_slices(slices, sums[0].device(), blocks);
    with_vector_width<float, T>(all_aligned({&sums, &addends}), [&](auto width) {
      accumulate_kernel<decltype(width)::value, T>
          <<<unsigned(blocks), kBlock, 0, stream(sums[0].device().index)>>>(
              static_cast<const SumSlice<T>*>(table.data_ptr()), int(slices.size()));
    });
    MOEGRAD_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace moegrad::cuda
