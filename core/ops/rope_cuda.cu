#include <cuda_runtime.h>

#include "core/cuda/rounding.cuh"
#include "core/cuda/strided.cuh"
#include "core/ops/rope.h"

namespace moegrad::cuda {
namespace {

// One thread per rotated pair (x[..., t, i], x[..., t, i + D/2]). Operand offsets: 0 the low
// element of x, 1 the low element of out, 2 the (t, i) entry of the tables.
template <typename T, typename C = compute_t<T>>
struct RotatePair {
  T* out;
  const T* x;
  const C* cos;  // the tables are in the compute type: f32 for bf16 x
  const C* sin;
  int64_t x_half;    // from a low element of x to its high partner
  int64_t out_half;  // the same in out
  C sign;            // -1 rotates by -a
  __device__ void operator()(const int64_t* off) const {
    const C lo = C(x[off[0]]), hi = C(x[off[0] + x_half]);
    const C c = cos[off[2]];
    const C s = sign * sin[off[2]];
    out[off[1]] = T(mul_rn(lo, c) - mul_rn(hi, s));
    out[off[1] + out_half] = T(mul_rn(hi, c) + mul_rn(lo, s));
  }
};

}  // namespace

void rope(const Tensor& out, const Tensor& x, const Tensor& cos, const Tensor& sin, bool inverse) {
  const int64_t half = x.size(-1) / 2;
  // The pairs: x's shape with the last dim halved; the tables broadcast over the leading dims.
  Shape pairs = x.shape();
  pairs.back() = half;
  Shape table_strides(pairs.size(), 0);
  table_strides[pairs.size() - 2] = half;
  table_strides.back() = 1;
  dispatch_compute(x.dtype(), "rope", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    launch_elementwise<3>(pairs, {x.strides(), out.strides(), table_strides}, x.device().index,
                          RotatePair<T>{out.data<T>(), x.data<T>(), cos.data<C>(), sin.data<C>(),
                                        half * x.stride(-1), half * out.stride(-1),
                                        inverse ? C(-1) : C(1)});
  });
}

}  // namespace moegrad::cuda
