#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/copy.h"

namespace moegrad::cuda {
namespace {

template <typename To, typename From>
__device__ __forceinline__ To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<From, bf16> || std::is_same_v<From, f16>) {
    return convert<To>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bf16> || std::is_same_v<To, f16>) {
    return To(static_cast<float>(v));
  } else {
    return static_cast<To>(v);
  }
}

template <typename D, typename S>
__global__ void copy_kernel(D* dst, const S* src, int64_t n, StridedIndex<2> ix) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    ix.offsets(i, off);
    dst[off[0]] = convert<D>(src[off[1]]);
  }
}

template <typename D>
__global__ void fill_kernel(D* dst, D value, int64_t n, StridedIndex<1> ix) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[1];
    ix.offsets(i, off);
    dst[off[0]] = value;
  }
}

}  // namespace

void copy_into(const Tensor& dst, const Tensor& src) {
  int64_t n = dst.numel();
  if (n == 0) return;
  auto ix = make_strided_index<2>(dst.shape(), {dst.strides(), src.strides()});
  cudaStream_t s = stream(dst.device().index);
  dispatch_all(dst.dtype(), [&](auto dt) {
    using D = typename decltype(dt)::type;
    dispatch_all(src.dtype(), [&](auto st) {
      using S = typename decltype(st)::type;
      copy_kernel<D, S><<<grid_for(n), kBlock, 0, s>>>(static_cast<D*>(dst.data_ptr()),
                                                         static_cast<const S*>(src.data_ptr()), n, ix);
      MOEGRAD_CUDA_CHECK_LAUNCH();
    });
  });
}

void fill_into(const Tensor& dst, double value) {
  int64_t n = dst.numel();
  if (n == 0) return;
  auto ix = make_strided_index<1>(dst.shape(), {dst.strides()});
  cudaStream_t s = stream(dst.device().index);
  dispatch_all(dst.dtype(), [&](auto dt) {
    using D = typename decltype(dt)::type;
    D v;
    if constexpr (std::is_same_v<D, bf16> || std::is_same_v<D, f16>) {
      v = D(float(value));
    } else {
      v = static_cast<D>(value);
    }
    fill_kernel<D><<<grid_for(n), kBlock, 0, s>>>(static_cast<D*>(dst.data_ptr()), v, n, ix);
    MOEGRAD_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace moegrad::cuda
