#include <cmath>

#include "core/ops/adamw.h"
#include "core/ops/cpu_loop.h"

namespace moegrad::cpu {
namespace {

// T: param and moments; G: grad (T, or bf16 for an f32 master). `rounded` receives the bf16
// copy of the updated param when defined.
template <typename T, typename G>
void step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
          const Tensor& rounded, const AdamWCoefficients& c, double beta1, double beta2,
          double eps) {
  // Coefficients rounded from f64, as torch passes them to its kernels.
  const T dec = T(c.decay), w1 = T(1.0 - beta1), b2 = T(beta2), w2 = T(1.0 - beta2), e = T(eps),
          lr_t = T(c.step_size), bc2 = T(c.bc2_sqrt), scale = T(c.grad_scale);
  T* p = param.data<T>();
  const G* g = grad.data<G>();
  T* m = exp_avg.data<T>();
  T* v = exp_avg_sq.data<T>();
  bf16* r = rounded.defined() ? rounded.data<bf16>() : nullptr;
  auto update = [=](T& pi, G gs, T& mi, T& vi) {
    const T gi = convert_value<T>(gs) * scale;
    // The order of torch's exp_avg.lerp_, exp_avg_sq.mul_().addcmul_() and addcdiv_.
    mi = mi + w1 * (gi - mi);
    vi = vi * b2 + w2 * gi * gi;
    pi = pi * dec - lr_t * (mi / (std::sqrt(vi) / bc2 + e));
  };
  const Shape& r_strides = rounded.defined() ? rounded.strides() : param.strides();
  strided_loop<5>(param.shape(),
                  {param.strides(), grad.strides(), exp_avg.strides(), exp_avg_sq.strides(),
                   r_strides},
                  [&](int64_t n, const std::array<int64_t, 5>& off,
                      const std::array<int64_t, 5>& st) {
                    T* pp = p + off[0];
                    const G* gp = g + off[1];
                    T* mp = m + off[2];
                    T* vp = v + off[3];
                    if (st[0] == 1 && st[1] == 1 && st[2] == 1 && st[3] == 1) {
#pragma omp simd
                      for (int64_t i = 0; i < n; ++i) update(pp[i], gp[i], mp[i], vp[i]);
                    } else {
                      for (int64_t i = 0; i < n; ++i)
                        update(pp[i * st[0]], gp[i * st[1]], mp[i * st[2]], vp[i * st[3]]);
                    }
                    if constexpr (std::is_same_v<T, float>) {
                      if (r) {
                        bf16* rp = r + off[4];
                        for (int64_t i = 0; i < n; ++i) rp[i * st[4]] = bf16(pp[i * st[0]]);
                      }
                    }
                  });
}

}  // namespace

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const Tensor& bf16_param, const AdamWCoefficients& c,
                double beta1, double beta2, double eps) {
  dispatch_float(param.dtype(), "adamw_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (grad.dtype() == DType::BF16) {
      step<T, bf16>(param, grad, exp_avg, exp_avg_sq, bf16_param, c, beta1, beta2, eps);
    } else {
      step<T, T>(param, grad, exp_avg, exp_avg_sq, bf16_param, c, beta1, beta2, eps);
    }
  });
}

void adamw_step_multi(const std::vector<AdamWTensors>& tensors,
                      const std::vector<AdamWCoefficients>& coefficients, double beta1,
                      double beta2, double eps) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    const AdamWTensors& t = tensors[i];
    if (!t.grad.defined()) continue;
    adamw_step(t.param, t.grad, t.exp_avg, t.exp_avg_sq, t.bf16_param, coefficients[i], beta1,
               beta2, eps);
  }
}

}  // namespace moegrad::cpu
