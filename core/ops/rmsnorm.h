// RMSNorm over the last dim, y = x * rsqrt(mean(x^2) + eps) * w (OLMoE's layer norms and its
// QK-norm). The forward saves the per-row rstd, so the backward needs no second reduction pass.
#pragma once
#include "core/tensor.h"

namespace moegrad {

struct RmsNormOutput {
  Tensor y;     // x's shape, contiguous
  Tensor rstd;  // x's shape without the last dim: 1 / sqrt(mean(x^2) + eps); f32 for bf16 x
};
struct RmsNormGrads {
  Tensor dx;  // x's shape
  Tensor dw;  // [D]
};

// x: [..., D], w: [D], one dtype (f32, f64 or bf16) and device. The statistic is accumulated in
// f64; bf16 computes in f32 and rounds y (and dx, dw) once.
RmsNormOutput rmsnorm_forward(const Tensor& x, const Tensor& w, double eps);
// grad: y's shape. dw sums over rows in a fixed order, whatever the thread count.
RmsNormGrads rmsnorm_backward(const Tensor& grad, const Tensor& x, const Tensor& w,
                              const Tensor& rstd);
inline Tensor rmsnorm(const Tensor& x, const Tensor& w, double eps) {
  return rmsnorm_forward(x, w, eps).y;
}

// Backends. All tensors contiguous; outputs preallocated.
namespace cpu {
void rmsnorm_forward(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& w,
                     double eps);
void rmsnorm_backward(const Tensor& dx, const Tensor& dw, const Tensor& grad, const Tensor& x,
                      const Tensor& w, const Tensor& rstd);
}  // namespace cpu
namespace cuda {
void rmsnorm_forward(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& w,
                     double eps);
void rmsnorm_backward(const Tensor& dx, const Tensor& dw, const Tensor& grad, const Tensor& x,
                      const Tensor& w, const Tensor& rstd);
}  // namespace cuda

}  // namespace moegrad
