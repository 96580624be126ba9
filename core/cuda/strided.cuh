// Strided indexing for CUDA elementwise kernels: maps a linear index over an output shape to
// the element offsets of up to N operands, after the same dim coalescing as the CPU loop.
#pragma once
#include <array>
#include <cstdint>

#include "core/cuda/runtime.h"
#include "core/error.h"
#include "core/fast_divmod.h"
#include "core/shape.h"

namespace moegrad::cuda {

// Kernel functors take their op as an `int` template parameter, cast back to the enum inside:
// nvcc 13's host-stub generator emits broken code for enum parameters from generic lambdas.
inline constexpr int kMaxDims = 12;

#if defined(__CUDACC__)
#define MOEGRAD_UNROLL _Pragma("unroll")
#else
#define MOEGRAD_UNROLL
#endif
inline constexpr int kBlock = 256;

template <int N>
struct StridedIndex {
  int ndim = 0;
  int64_t size[kMaxDims];            // innermost first
  FastDivmod divider[kMaxDims];      // size[d]'s, when `narrow`
  int64_t stride[N][kMaxDims];
  bool contiguous = true;            // all operands dense and in order: offset == linear index
  bool narrow = false;               // fewer than 2^31 elements: 32-bit index arithmetic

  // Host-callable too, so the index arithmetic is tested without a GPU.
  MOEGRAD_HD void offsets(int64_t linear, int64_t (&off)[N]) const {
    if (contiguous) {
MOEGRAD_UNROLL
      for (int k = 0; k < N; ++k) off[k] = linear;
      return;
    }
MOEGRAD_UNROLL
    for (int k = 0; k < N; ++k) off[k] = 0;
    if (narrow) {
      // The outermost dim's index is what is left: it needs no division.
      uint32_t rest = uint32_t(linear);
      for (int d = 0; d < ndim - 1; ++d) {
        const uint32_t q = divider[d].div(rest);
        const int64_t i = int64_t(rest - q * divider[d].divisor());
        rest = q;
MOEGRAD_UNROLL
        for (int k = 0; k < N; ++k) off[k] += i * stride[k][d];
      }
MOEGRAD_UNROLL
      for (int k = 0; k < N; ++k) off[k] += int64_t(rest) * stride[k][ndim - 1];
      return;
    }
    for (int d = 0; d < ndim; ++d) {
      int64_t i = linear % size[d];
      linear /= size[d];
MOEGRAD_UNROLL
      for (int k = 0; k < N; ++k) off[k] += i * stride[k][d];
    }
  }
};

template <int N>
StridedIndex<N> make_strided_index(const Shape& shape, const ShapeRefs<N>& strides) {
  StridedIndex<N> ix;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    if (ix.ndim > 0) {
      bool mergeable = true;
      for (int k = 0; k < N; ++k)
        if (strides[k].get()[d] != ix.stride[k][ix.ndim - 1] * ix.size[ix.ndim - 1])
          mergeable = false;
      if (mergeable) {
        ix.size[ix.ndim - 1] *= shape[d];
        continue;
      }
    }
    MOEGRAD_CHECK(ix.ndim < kMaxDims, "CUDA kernels support at most ", kMaxDims,
                  " non-mergeable dims, got shape ", shape_str(shape));
    ix.size[ix.ndim] = shape[d];
    for (int k = 0; k < N; ++k) ix.stride[k][ix.ndim] = strides[k].get()[d];
    ++ix.ndim;
  }
  ix.contiguous = ix.ndim <= 1;
  for (int k = 0; k < N && ix.ndim == 1; ++k) ix.contiguous &= ix.stride[k][0] == 1;
  if (ix.ndim == 0) ix.contiguous = true;
  const int64_t numel = shape_numel(shape);
  ix.narrow = numel > 0 && numel < (int64_t(1) << 31);
  if (ix.narrow)
    for (int d = 0; d < ix.ndim; ++d) ix.divider[d] = FastDivmod(ix.size[d]);
  return ix;
}

inline unsigned grid_for(int64_t n) {
  int64_t blocks = (n + kBlock - 1) / kBlock;
  return unsigned(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535 * 8));
}

}  // namespace moegrad::cuda

// Checks the launch itself (bad configuration, missing kernel image) right after <<<...>>>.
#define MOEGRAD_CUDA_CHECK_LAUNCH() MOEGRAD_CUDA_CHECK(cudaGetLastError())

#if defined(__CUDACC__)
namespace moegrad::cuda {

// Grid-stride loop over every element of the output: f(off) with off[k] the element offset of
// operand k.
template <int N, typename F>
__global__ void elementwise_kernel(int64_t n, StridedIndex<N> ix, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[N];
    ix.offsets(i, off);
    f(off);
  }
}

// Runs functor `f` (a struct with `__device__ void operator()(const int64_t* off) const`) over
// `shape`, operand k having `strides[k]`, on moegrad's stream of `device`.
template <int N, typename F>
void launch_elementwise(const Shape& shape, const ShapeRefs<N>& strides, int device, F f) {
  int64_t n = shape_numel(shape);
  if (n == 0) return;
  auto ix = make_strided_index<N>(shape, strides);
  elementwise_kernel<N, F><<<grid_for(n), kBlock, 0, stream(device)>>>(n, ix, f);
  MOEGRAD_CUDA_CHECK_LAUNCH();
}

}  // namespace moegrad::cuda
#endif
