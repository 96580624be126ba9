#include "core/ops/cpu_loop.h"
#include "core/ops/swiglu.h"
#include "core/ops/swiglu_op.h"

namespace moegrad::cpu {
namespace {

// One pass over grad, gate and up writing the wanted gradients; the all-unit-stride run is the
// vectorised path. An output not wanted is null, and walks with the other output's strides.
template <typename T, bool NeedGate, bool NeedUp>
void backward_loop(T* dg, T* du, const Shape& shape, const ShapeRefs<5>& strides, const T* gr,
                   const T* ga, const T* up) {
  using C = compute_t<T>;
  strided_loop<5>(shape, strides,
                  [&](int64_t n, const std::array<int64_t, 5>& off, const std::array<int64_t, 5>& st) {
                    T* dgp = dg + (NeedGate ? off[0] : 0);
                    T* dup = du + (NeedUp ? off[1] : 0);
                    const T* grp = gr + off[2];
                    const T* gap = ga + off[3];
                    const T* upp = up + off[4];
                    // k0..k4: the element's offsets in d_gate, d_up, grad, gate, up.
                    auto one = [&](int64_t k0, int64_t k1, int64_t k2, int64_t k3, int64_t k4) {
                      const SwigluGrad<C> d = swiglu_grad_apply(C(grp[k2]), C(gap[k3]), C(upp[k4]));
                      if constexpr (NeedGate) dgp[k0] = T(d.d_gate);
                      if constexpr (NeedUp) dup[k1] = T(d.d_up);
                    };
                    if (st[0] == 1 && st[1] == 1 && st[2] == 1 && st[3] == 1 && st[4] == 1) {
                      for (int64_t i = 0; i < n; ++i) one(i, i, i, i, i);
                    } else {
                      for (int64_t i = 0; i < n; ++i)
                        one(i * st[0], i * st[1], i * st[2], i * st[3], i * st[4]);
                    }
                  });
}

// The scaled forms walk rows whose columns are contiguous (swiglu.cpp sees to it), whole rows
// to a thread; each row's work is its own plain loop, which GCC inlines and vectorises.
template <typename Row>
void for_rows(int64_t rows, int64_t D, Row&& row) {
#pragma omp parallel for schedule(static) if (rows * D >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) row(r);
}

template <typename T, typename C = compute_t<T>>
void scaled_row(T* out, const T* gate, const T* up, C s, int64_t D) {
  for (int64_t j = 0; j < D; ++j) out[j] = T(swiglu_apply(C(gate[j]), C(up[j])) * s);
}

template <typename T, typename C = compute_t<T>>
void scaled_grad_row(T* d_gate, T* d_up, const T* grad, const T* gate, const T* up, C s,
                     int64_t D) {
  for (int64_t j = 0; j < D; ++j) {
    const SwigluGrad<C> d = swiglu_grad_apply(C(grad[j]) * s, C(gate[j]), C(up[j]));
    d_gate[j] = T(d.d_gate);
    d_up[j] = T(d.d_up);
  }
}

// A row's sum of grad * swiglu in f64, in kLanes lanes (column j in lane j mod kLanes) that meet
// in a fixed tree: a loop GCC vectorises (one chain of dependent additions would not), and the
// same bits whatever else the caller computes and however rows go to threads.
constexpr int64_t kLanes = 8;

template <typename T, typename C = compute_t<T>>
double scale_grad_row(const T* grad, const T* gate, const T* up, int64_t D) {
  double lane[kLanes] = {};
  auto term = [&](int64_t j) { return double(C(grad[j]) * swiglu_apply(C(gate[j]), C(up[j]))); };
  int64_t j = 0;
  for (; j + kLanes <= D; j += kLanes)
    for (int64_t k = 0; k < kLanes; ++k) lane[k] += term(j + k);
  for (; j < D; ++j) lane[j % kLanes] += term(j);
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

}  // namespace

void swiglu(const Tensor& out, const Tensor& gate, const Tensor& up) {
  dispatch_compute(gate.dtype(), "swiglu", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    T* o = out.data<T>();
    const T* g = gate.data<T>();
    const T* u = up.data<T>();
    strided_loop<3>(out.shape(), {out.strides(), gate.strides(), up.strides()},
                    [&](int64_t n, const std::array<int64_t, 3>& off, const std::array<int64_t, 3>& st) {
                      T* op_ = o + off[0];
                      const T* gp = g + off[1];
                      const T* upp = u + off[2];
                      if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
                        for (int64_t i = 0; i < n; ++i) op_[i] = T(swiglu_apply(C(gp[i]), C(upp[i])));
                      } else {
                        for (int64_t i = 0; i < n; ++i)
                          op_[i * st[0]] = T(swiglu_apply(C(gp[i * st[1]]), C(upp[i * st[2]])));
                      }
                    });
  });
}

void swiglu_backward(const Tensor& d_gate, const Tensor& d_up, const Tensor& grad,
                     const Tensor& gate, const Tensor& up) {
  dispatch_compute(gate.dtype(), "swiglu_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const Shape& dg_st = d_gate.defined() ? d_gate.strides() : d_up.strides();
    const Shape& du_st = d_up.defined() ? d_up.strides() : d_gate.strides();
    const ShapeRefs<5> strides{dg_st, du_st, grad.strides(), gate.strides(), up.strides()};
    T* dg = d_gate.defined() ? d_gate.data<T>() : nullptr;
    T* du = d_up.defined() ? d_up.data<T>() : nullptr;
    const T* gr = grad.data<T>();
    const T* ga = gate.data<T>();
    const T* u = up.data<T>();
    if (dg && du) backward_loop<T, true, true>(dg, du, gate.shape(), strides, gr, ga, u);
    else if (dg) backward_loop<T, true, false>(dg, du, gate.shape(), strides, gr, ga, u);
    else backward_loop<T, false, true>(dg, du, gate.shape(), strides, gr, ga, u);
  });
}

void swiglu_scaled(const Tensor& out, const Tensor& gate, const Tensor& up, const Tensor& scale) {
  dispatch_compute(gate.dtype(), "swiglu_scaled", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const int64_t D = gate.size(1);
    T* o = out.data<T>();
    const T *g = gate.data<T>(), *u = up.data<T>(), *sc = scale.data<T>();
    for_rows(gate.size(0), D, [&](int64_t r) {
      scaled_row(o + r * D, g + r * gate.stride(0), u + r * up.stride(0), C(sc[r * scale.stride(0)]),
                 D);
    });
  });
}

void swiglu_scaled_backward(const Tensor& d_gate_up, const Tensor& d_scale, const Tensor& grad,
                            const Tensor& gate, const Tensor& up, const Tensor& scale) {
  dispatch_compute(gate.dtype(), "swiglu_scaled_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const int64_t D = gate.size(1);
    T* dgu = d_gate_up.defined() ? d_gate_up.data<T>() : nullptr;
    T* ds = d_scale.defined() ? d_scale.data<T>() : nullptr;
    const T *gr = grad.data<T>(), *g = gate.data<T>(), *u = up.data<T>(), *sc = scale.data<T>();
    for_rows(gate.size(0), D, [&](int64_t r) {
      const T *grr = gr + r * grad.stride(0), *gar = g + r * gate.stride(0),
              *ur = u + r * up.stride(0);
      if (dgu)
        scaled_grad_row(dgu + r * 2 * D, dgu + r * 2 * D + D, grr, gar, ur,
                        C(sc[r * scale.stride(0)]), D);
      if (ds) ds[r] = round_from_f64<T>(scale_grad_row(grr, gar, ur, D));
    });
  });
}

}  // namespace moegrad::cpu
