#include <cuda_runtime.h>

#include <algorithm>
#include <climits>

#include "core/cuda/strided.cuh"
#include "core/ops/reduce.h"
#include "core/ops/reduce_cuda.cuh"
#include "core/ops/reduce_op.h"

namespace moegrad::cuda {
namespace {

// With fewer blocks than this the GPU idles, so a long R is cut into chunks reduced by
// separate blocks; a second kernel folds each output's chunks in order.
constexpr int64_t kTargetBlocks = 512;
// The column kernel: kWidth neighbouring outputs, each reduced by kLanes threads.
constexpr int kWidth = 32;
constexpr int kLanes = kBlock / kWidth;

// Rows: kThreads threads (a warp or the whole block) reduce one output's elements, read with
// stride sr: coalesced when sr == 1. blockIdx.y picks the chunk [c * chunk, (c + 1) * chunk)
// of R; with several chunks each writes its partial result instead of the output.
template <int kThreads, typename Red, typename T>
__global__ void rows_kernel(Red red, const T* x, ReduceLayout L, int64_t chunk,
                            typename Red::Acc* partials) {
  using Acc = typename Red::Acc;
  constexpr int kRows = kBlock / kThreads;
  __shared__ Acc sm[kRows][kThreads];
  int64_t n = L.outer * L.inner;
  int64_t j = int64_t(blockIdx.x) * kRows + threadIdx.y;
  int64_t r0 = int64_t(blockIdx.y) * chunk;
  int64_t r1 = r0 + chunk < L.R ? r0 + chunk : L.R;
  Acc a = red.identity();
  if (j < n) {
    const T* p = x + L.base(j);
    for (int64_t r = r0 + threadIdx.x; r < r1; r += kThreads) a = red.step(a, p[r * L.sr], r);
  }
  a = fold_row(a, sm, [&](Acc u, Acc v) { return red.combine(u, v); });
  if (threadIdx.x == 0 && j < n) {
    if (partials) {
      partials[j * gridDim.y + blockIdx.y] = a;
    } else {
      red.write(j, a);
    }
  }
}

// Columns: kWidth consecutive outputs per block, coalesced when their elements are adjacent
// (si == 1); the kLanes threads of a column take every kLanes-th element of its chunk and are
// folded in lane order.
template <typename Red, typename T>
__global__ void columns_kernel(Red red, const T* x, ReduceLayout L, int64_t chunk,
                               typename Red::Acc* partials) {
  using Acc = typename Red::Acc;
  __shared__ Acc sm[kLanes][kWidth];
  const int tx = threadIdx.x, ty = threadIdx.y;
  int64_t n = L.outer * L.inner;
  int64_t j = int64_t(blockIdx.x) * kWidth + tx;
  int64_t r0 = int64_t(blockIdx.y) * chunk;
  int64_t r1 = r0 + chunk < L.R ? r0 + chunk : L.R;
  Acc a = red.identity();
  if (j < n) {
    const T* p = x + L.base(j);
    for (int64_t r = r0 + ty; r < r1; r += kLanes) a = red.step(a, p[r * L.sr], r);
  }
  sm[ty][tx] = a;
  __syncthreads();
#pragma unroll
  for (int s = kLanes / 2; s > 0; s >>= 1) {
    if (ty < s) sm[ty][tx] = red.combine(sm[ty][tx], sm[ty + s][tx]);
    __syncthreads();
  }
  if (ty == 0 && j < n) {
    if (partials) {
      partials[j * gridDim.y + blockIdx.y] = sm[0][tx];
    } else {
      red.write(j, sm[0][tx]);
    }
  }
}

// Folds each output's chunk results, in chunk order.
template <typename Red>
__global__ void finish_kernel(Red red, const typename Red::Acc* partials, int64_t n, int chunks) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < n;
       j += int64_t(gridDim.x) * blockDim.x) {
    typename Red::Acc a = partials[j * chunks];
    for (int c = 1; c < chunks; ++c) a = red.combine(a, partials[j * chunks + c]);
    red.write(j, a);
  }
}

// Cuts R into chunks of at least min_chunk elements until about kTargetBlocks blocks run, then
// launches launch(chunk, chunks, partials) and, when there are several chunks, the fold.
// The cut depends on the shapes only, so the result does not depend on the GPU.
template <typename Red, typename Launch>
void launch_split(const Red& red, int64_t n, int64_t R, int64_t blocks, int64_t min_chunk,
                  Device device, Launch launch) {
  using Acc = typename Red::Acc;
  MOEGRAD_CHECK(blocks <= INT_MAX, "reduce: ", n, " outputs are too many for one launch");
  int64_t chunks = 1;
  if (blocks < kTargetBlocks)
    chunks = std::max<int64_t>(1, std::min(R / min_chunk, (kTargetBlocks + blocks - 1) / blocks));
  int64_t chunk = (R + chunks - 1) / chunks;
  chunks = (R + chunk - 1) / chunk;  // no empty chunk
  if (chunks == 1) {
    launch(chunk, dim3(unsigned(blocks), 1), static_cast<Acc*>(nullptr));
    return;
  }
  Tensor buf = empty({int64_t((n * chunks * sizeof(Acc) + 7) / 8)}, DType::F64, device);
  Acc* partials = reinterpret_cast<Acc*>(buf.data<double>());
  launch(chunk, dim3(unsigned(blocks), unsigned(chunks)), partials);
  // buf is freed on return, but the caching allocator hands it out again only to work queued
  // after this fold on the same stream.
  finish_kernel<<<grid_for(n), kBlock, 0, stream(device.index)>>>(red, partials, n, int(chunks));
  MOEGRAD_CUDA_CHECK_LAUNCH();
}

template <int kThreads, typename Red, typename T>
void launch_rows(const Red& red, const T* x, const ReduceLayout& L, Device device) {
  constexpr int kRows = kBlock / kThreads;
  int64_t n = L.outer * L.inner;
  cudaStream_t s = stream(device.index);
  launch_split(red, n, L.R, (n + kRows - 1) / kRows, 16 * kThreads, device,
               [&](int64_t chunk, dim3 grid, typename Red::Acc* partials) {
                 rows_kernel<kThreads, Red, T>
                     <<<grid, dim3(kThreads, kRows), 0, s>>>(red, x, L, chunk, partials);
                 MOEGRAD_CUDA_CHECK_LAUNCH();
               });
}

template <typename Red, typename T>
void launch_columns(const Red& red, const T* x, const ReduceLayout& L, Device device) {
  int64_t n = L.outer * L.inner;
  cudaStream_t s = stream(device.index);
  launch_split(red, n, L.R, (n + kWidth - 1) / kWidth, 16 * kLanes, device,
               [&](int64_t chunk, dim3 grid, typename Red::Acc* partials) {
                 columns_kernel<Red, T>
                     <<<grid, dim3(kWidth, kLanes), 0, s>>>(red, x, L, chunk, partials);
                 MOEGRAD_CUDA_CHECK_LAUNCH();
               });
}

// Rows whose elements are adjacent (or rows alone) go to the row kernel: a warp per row, or
// the whole block for long rows. Short rows and strided rows go to the column kernel, which
// reads neighbouring outputs together.
template <typename Red, typename T>
void run(const Red& red, const Tensor& x) {
  ReduceLayout L = reduce_layout(x);
  const T* p = x.data<T>();
  bool rows = (L.inner == 1 || L.sr == 1) && L.R >= 32;
  if (rows && L.R > 2048) {
    launch_rows<kBlock>(red, p, L, x.device());
  } else if (rows) {
    launch_rows<32>(red, p, L, x.device());
  } else {
    launch_columns(red, p, L, x.device());
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

}  // namespace moegrad::cuda
