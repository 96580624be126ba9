#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/copy.h"

namespace moegrad::cuda {
namespace {

template <typename D, typename S>
struct CopyFn {
  __device__ D operator()(S v) const { return convert_value<D>(v); }
};

template <typename D>
struct FillFn {
  D value;
  __device__ D operator()() const { return value; }
};

}  // namespace

void copy_into(const Tensor& dst, const Tensor& src) {
  dispatch_all(dst.dtype(), [&](auto dt) {
    using D = typename decltype(dt)::type;
    dispatch_all(src.dtype(), [&](auto st) {
      using S = typename decltype(st)::type;
      launch_map<D, S>(CopyFn<D, S>{}, dst, src);
    });
  });
}

void fill_into(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), [&](auto dt) {
    using D = typename decltype(dt)::type;
    launch_map<D>(FillFn<D>{convert_value<D>(value)}, dst);
  });
}

}  // namespace moegrad::cuda
