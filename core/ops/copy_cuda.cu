#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/copy.h"

namespace moegrad::cuda {
namespace {

template <typename D, typename S>
struct CopyFn {
  D* dst;
  const S* src;
  __device__ void operator()(const int64_t* off) const { dst[off[0]] = convert_value<D>(src[off[1]]); }
};

template <typename D>
struct FillFn {
  D* dst;
  D value;
  __device__ void operator()(const int64_t* off) const { dst[off[0]] = value; }
};

}  // namespace

void copy_into(const Tensor& dst, const Tensor& src) {
  dispatch_all(dst.dtype(), [&](auto dt) {
    using D = typename decltype(dt)::type;
    dispatch_all(src.dtype(), [&](auto st) {
      using S = typename decltype(st)::type;
      launch_elementwise<2>(dst.shape(), {dst.strides(), src.strides()}, dst.device().index,
                            CopyFn<D, S>{static_cast<D*>(dst.data_ptr()), static_cast<const S*>(src.data_ptr())});
    });
  });
}

void fill_into(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), [&](auto dt) {
    using D = typename decltype(dt)::type;
    launch_elementwise<1>(dst.shape(), {dst.strides()}, dst.device().index,
                          FillFn<D>{static_cast<D*>(dst.data_ptr()), convert_value<D>(value)});
  });
}

}  // namespace moegrad::cuda
