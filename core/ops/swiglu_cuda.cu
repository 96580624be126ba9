#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/swiglu.h"
#include "core/ops/swiglu_op.h"

namespace moegrad::cuda {
namespace {

template <typename T>
struct SwigluFn {
  T* out;
  const T* gate;
  const T* up;
  __device__ void operator()(const int64_t* off) const {
    using C = compute_t<T>;
    out[off[0]] = T(swiglu_apply(C(gate[off[1]]), C(up[off[2]])));
  }
};

// Operands: d_gate, d_up, grad, gate, up. An output not wanted is null and never touched.
template <typename T, bool NeedGate, bool NeedUp>
struct SwigluGradFn {
  T* d_gate;
  T* d_up;
  const T* grad;
  const T* gate;
  const T* up;
  __device__ void operator()(const int64_t* off) const {
    using C = compute_t<T>;
    const SwigluGrad<C> d = swiglu_grad_apply(C(grad[off[2]]), C(gate[off[3]]), C(up[off[4]]));
    if constexpr (NeedGate) d_gate[off[0]] = T(d.d_gate);
    if constexpr (NeedUp) d_up[off[1]] = T(d.d_up);
  }
};

template <typename T, bool NeedGate, bool NeedUp>
void launch_backward(const Tensor& d_gate, const Tensor& d_up, const Tensor& grad,
                     const Tensor& gate, const Tensor& up) {
  // An output not wanted walks with the other's strides, so it does not stop dims merging.
  const Shape& dg_st = NeedGate ? d_gate.strides() : d_up.strides();
  const Shape& du_st = NeedUp ? d_up.strides() : d_gate.strides();
  launch_elementwise<5>(gate.shape(), {dg_st, du_st, grad.strides(), gate.strides(), up.strides()},
                        gate.device().index,
                        SwigluGradFn<T, NeedGate, NeedUp>{NeedGate ? d_gate.data<T>() : nullptr,
                                                          NeedUp ? d_up.data<T>() : nullptr,
                                                          grad.data<T>(), gate.data<T>(),
                                                          up.data<T>()});
}

}  // namespace

void swiglu(const Tensor& out, const Tensor& gate, const Tensor& up) {
  dispatch_compute(gate.dtype(), "swiglu", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_elementwise<3>(out.shape(), {out.strides(), gate.strides(), up.strides()},
                          out.device().index, SwigluFn<T>{out.data<T>(), gate.data<T>(), up.data<T>()});
  });
}

void swiglu_backward(const Tensor& d_gate, const Tensor& d_up, const Tensor& grad,
                     const Tensor& gate, const Tensor& up) {
  dispatch_compute(gate.dtype(), "swiglu_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (d_gate.defined() && d_up.defined()) launch_backward<T, true, true>(d_gate, d_up, grad, gate, up);
    else if (d_gate.defined()) launch_backward<T, true, false>(d_gate, d_up, grad, gate, up);
    else launch_backward<T, false, true>(d_gate, d_up, grad, gate, up);
  });
}

}  // namespace moegrad::cuda
