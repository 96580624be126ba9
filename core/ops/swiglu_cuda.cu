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

// Row strides of the scaled ops' operands (their columns have unit stride): out is the
// forward's result or the backward's d_gate_up; grad is the backward's.
struct ScaledRows {
  int64_t out, grad, gate, up, scale;
};

// out = swiglu(gate, up) * scale, a row's scale broadcast along it, in the backward's row layout
// (below) without its sum.
template <int kThreads, int W, typename T, typename C = compute_t<T>>
__global__ void scaled_forward_kernel(T* out, const T* gate, const T* up, const T* scale,
                                      ScaledRows rs, int64_t rows, int64_t D) {
  const int64_t row = int64_t(blockIdx.x) * (kBlock / kThreads) + threadIdx.y;
  if (row >= rows) return;
  const C s = C(scale[row * rs.scale]);
  map_row<kThreads, W>(
      threadIdx.x, D, [&](int64_t, T a, T b) { return T(swiglu_apply(C(a), C(b)) * s); },
      out + row * rs.out, gate + row * rs.gate, up + row * rs.up);
}

// kThreads threads a row (a warp, or the block for long rows), kBlock / kThreads rows a block,
// W columns a load and a store (16-byte vectors when the rows allow, else 1). The scale's
// gradient: each thread's f64 sum over its columns, then the row's fixed tree.
template <int kThreads, int W, typename T, bool NeedGateUp, bool NeedScale,
          typename C = compute_t<T>>
__global__ void scaled_backward_kernel(T* d_gate_up, T* d_scale, const T* grad, const T* gate,
                                       const T* up, const T* scale, ScaledRows rs, int64_t rows,
                                       int64_t D) {
  constexpr int kRows = kBlock / kThreads;
  __shared__ double sm[kRows][kThreads];
  const int64_t row = int64_t(blockIdx.x) * kRows + threadIdx.y;
  double dot = 0;
  if (row < rows) {
    const C s = C(scale[row * rs.scale]);
    for_row_vectors<kThreads, W>(
        threadIdx.x, D,
        [&](int64_t j, const Vector<T, W>& gv, const Vector<T, W>& av, const Vector<T, W>& bv) {
          Vector<T, W> dg, du;
MOEGRAD_UNROLL
          for (int e = 0; e < W; ++e) {
            const C g = C(gv.v[e]), a = C(av.v[e]), b = C(bv.v[e]);
            if constexpr (NeedGateUp) {
              const SwigluGrad<C> d = swiglu_grad_apply(g * s, a, b);
              dg.v[e] = T(d.d_gate);
              du.v[e] = T(d.d_up);
            }
            // mul_rn: the product rounded before the f64 sum, never fused into it, whatever
            // else the kernel holds (the CPU's f64 lanes may fuse theirs; the sums' orders
            // differ anyway).
            if constexpr (NeedScale) dot += double(mul_rn(g, swiglu_apply(a, b)));
          }
          if constexpr (NeedGateUp) {
            store_vector<W>(d_gate_up + row * rs.out + j * W, dg);
            store_vector<W>(d_gate_up + row * rs.out + D + j * W, du);
          }
        },
        grad + row * rs.grad, gate + row * rs.gate, up + row * rs.up);
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
  const ScaledRows rs{NeedGateUp ? d_gate_up.stride(0) : 0, grad.stride(0), gate.stride(0),
                      up.stride(0), scale.stride(0)};
  cudaStream_t s = stream(gate.device().index);
  const Tensor& out_rows = NeedGateUp ? d_gate_up : grad;  // grad stands in for no d_gate_up
  launch_over_row_vectors<T>("swiglu_scaled_backward", rows, D, {&grad, &gate, &up, &out_rows},
                             [&](auto width, auto threads, unsigned grid, dim3 block) {
                               constexpr int W = decltype(width)::value,
                                             kThreads = decltype(threads)::value;
                               scaled_backward_kernel<kThreads, W, T, NeedGateUp, NeedScale>
                                   <<<grid, block, 0, s>>>(
                                       NeedGateUp ? d_gate_up.data<T>() : nullptr,
                                       NeedScale ? d_scale.data<T>() : nullptr, grad.data<T>(),
                                       gate.data<T>(), up.data<T>(), scale.data<T>(), rs, rows, D);
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
  const int64_t rows = gate.size(0), D = gate.size(1);
  if (rows == 0) return;
  const ScaledRows rs{out.stride(0), 0, gate.stride(0), up.stride(0), scale.stride(0)};
  cudaStream_t s = stream(gate.device().index);
  dispatch_compute(gate.dtype(), "swiglu_scaled", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_over_row_vectors<T>(
        "swiglu_scaled", rows, D, {&out, &gate, &up},
        [&](auto width, auto threads, unsigned grid, dim3 block) {
          constexpr int W = decltype(width)::value, kThreads = decltype(threads)::value;
          scaled_forward_kernel<kThreads, W, T><<<grid, block, 0, s>>>(
              out.data<T>(), gate.data<T>(), up.data<T>(), scale.data<T>(), rs, rows, D);
        });
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
