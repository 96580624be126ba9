#include <cuda_runtime.h>

#include "core/cuda/rounding.cuh"
#include "core/cuda/strided.cuh"
#include "core/ops/reduce_cuda.cuh"
#include "core/ops/swiglu.h"
#include "core/ops/swiglu_op.h"

namespace moegrad::cuda {
namespace {

template <typename T>
struct SwigluFn {
  __device__ T operator()(T gate, T up) const {
    using C = compute_t<T>;
    return T(swiglu_apply(C(gate), C(up)));
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

template <typename T>
struct SwigluScaledFn {
  __device__ T operator()(T gate, T up, T scale) const {
    using C = compute_t<T>;
    return T(swiglu_apply(C(gate), C(up)) * C(scale));
  }
};

// Row strides of the scaled backward's inputs (their columns have unit stride).
struct ScaledRows {
  int64_t grad, gate, up, scale;
};

// kThreads threads a row (a warp, or the block for long rows), kBlock / kThreads rows a block.
// The scale's gradient: each thread's f64 sum over its columns, then the row's fixed tree.
template <int kThreads, typename T, bool NeedGateUp, bool NeedScale, typename C = compute_t<T>>
__global__ void scaled_backward_kernel(T* d_gate_up, T* d_scale, const T* grad, const T* gate,
                                       const T* up, const T* scale, ScaledRows rs, int64_t rows,
                                       int64_t D) {
  constexpr int kRows = kBlock / kThreads;
  __shared__ double sm[kRows][kThreads];
  const int64_t row = int64_t(blockIdx.x) * kRows + threadIdx.y;
  double dot = 0;
  if (row < rows) {
    const C s = C(scale[row * rs.scale]);
    for (int64_t j = threadIdx.x; j < D; j += kThreads) {
      const C g = C(grad[row * rs.grad + j]), a = C(gate[row * rs.gate + j]),
              b = C(up[row * rs.up + j]);
      if constexpr (NeedGateUp) {
        const SwigluGrad<C> d = swiglu_grad_apply(g * s, a, b);
        d_gate_up[row * 2 * D + j] = T(d.d_gate);
        d_gate_up[row * 2 * D + D + j] = T(d.d_up);
      }
      // mul_rn: the product rounded before the f64 sum, never fused into it, whatever else the
      // kernel holds (the CPU's f64 lanes may fuse theirs; the sums' orders differ anyway).
      if constexpr (NeedScale) dot += double(mul_rn(g, swiglu_apply(a, b)));
    }
  }
  if constexpr (NeedScale) {
    dot = fold_row(dot, sm, [](double x, double y) { return x + y; });
    if (row < rows && threadIdx.x == 0) d_scale[row] = round_from_f64<T>(dot);
  }
}

template <typename T, bool NeedGateUp, bool NeedScale>
void launch_scaled_backward(const Tensor& d_gate_up, const Tensor& d_scale, const Tensor& grad,
                            const Tensor& gate, const Tensor& up, const Tensor& scale) {
  const int64_t rows = gate.size(0), D = gate.size(1);
  const ScaledRows rs{grad.stride(0), gate.stride(0), up.stride(0), scale.stride(0)};
  cudaStream_t s = stream(gate.device().index);
  launch_over_rows("swiglu_scaled_backward", rows, D, [&](auto threads, unsigned grid, dim3 block) {
    scaled_backward_kernel<decltype(threads)::value, T, NeedGateUp, NeedScale><<<grid, block, 0, s>>>(
        NeedGateUp ? d_gate_up.data<T>() : nullptr, NeedScale ? d_scale.data<T>() : nullptr,
        grad.data<T>(), gate.data<T>(), up.data<T>(), scale.data<T>(), rs, rows, D);
  });
}

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
    launch_map<T, T, T>(SwigluFn<T>{}, out, gate, up);
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

void swiglu_scaled(const Tensor& out, const Tensor& gate, const Tensor& up, const Tensor& scale) {
  dispatch_compute(gate.dtype(), "swiglu_scaled", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // The scale broadcast along each row (stride 0).
    launch_map<T, T, T, T>(SwigluScaledFn<T>{}, out, gate, up, scale.expand(gate.shape()));
  });
}

void swiglu_scaled_backward(const Tensor& d_gate_up, const Tensor& d_scale, const Tensor& grad,
                            const Tensor& gate, const Tensor& up, const Tensor& scale) {
  dispatch_compute(gate.dtype(), "swiglu_scaled_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (d_gate_up.defined() && d_scale.defined())
      launch_scaled_backward<T, true, true>(d_gate_up, d_scale, grad, gate, up, scale);
    else if (d_gate_up.defined())
      launch_scaled_backward<T, true, false>(d_gate_up, d_scale, grad, gate, up, scale);
    else
      launch_scaled_backward<T, false, true>(d_gate_up, d_scale, grad, gate, up, scale);
  });
}

}  // namespace moegrad::cuda
