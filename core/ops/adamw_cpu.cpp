#include <cmath>

#include "core/ops/adamw.h"
#include "core/ops/cpu_loop.h"

namespace moegrad::cpu {

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, double decay, double beta1, double beta2, double eps,
                double step_size, double bc2_sqrt) {
  dispatch_float(param.dtype(), "adamw_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // Coefficients rounded from f64, as torch passes them to its kernels.
    const T dec = T(decay), w1 = T(1.0 - beta1), b2 = T(beta2), w2 = T(1.0 - beta2), e = T(eps),
            lr_t = T(step_size), bc2 = T(bc2_sqrt);
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* m = exp_avg.data<T>();
    T* v = exp_avg_sq.data<T>();
    auto update = [=](T& pi, T gi, T& mi, T& vi) {
      // The order of torch's exp_avg.lerp_, exp_avg_sq.mul_().addcmul_() and addcdiv_.
      mi = mi + w1 * (gi - mi);
      vi = vi * b2 + w2 * gi * gi;
      pi = pi * dec - lr_t * (mi / (std::sqrt(vi) / bc2 + e));
    };
    strided_loop<4>(param.shape(),
                    {param.strides(), grad.strides(), exp_avg.strides(), exp_avg_sq.strides()},
                    [&](int64_t n, const std::array<int64_t, 4>& off,
                        const std::array<int64_t, 4>& st) {
                      T* pp = p + off[0];
                      const T* gp = g + off[1];
                      T* mp = m + off[2];
                      T* vp = v + off[3];
                      if (st[0] == 1 && st[1] == 1 && st[2] == 1 && st[3] == 1) {
#pragma omp simd
                        for (int64_t i = 0; i < n; ++i) update(pp[i], gp[i], mp[i], vp[i]);
                      } else {
                        for (int64_t i = 0; i < n; ++i)
                          update(pp[i * st[0]], gp[i * st[1]], mp[i * st[2]], vp[i * st[3]]);
                      }
                    });
  });
}

void adamw_step_multi(const std::vector<AdamWTensors>& tensors,
                      const std::vector<AdamWCoefficients>& coefficients, double beta1,
                      double beta2, double eps) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    const AdamWTensors& t = tensors[i];
    const AdamWCoefficients& c = coefficients[i];
    adamw_step(t.param, t.grad, t.exp_avg, t.exp_avg_sq, c.decay, beta1, beta2, eps, c.step_size,
               c.bc2_sqrt);
  }
}

}  // namespace moegrad::cpu
