// One AdamW step in place, with PyTorch's semantics (torch.optim.AdamW, amsgrad off):
//   p -= lr * wd * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps).
// Not differentiable: optimizers run outside the graph.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace moegrad {

struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

// param, grad, exp_avg, exp_avg_sq: one shape, float dtype and device, any strides (a slice of
// a stacked expert tensor is updated where it lies). step counts from 1.
void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                double weight_decay, int64_t step);
inline void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                       const Tensor& exp_avg_sq, const AdamWConfig& c, int64_t step) {
  adamw_step(param, grad, exp_avg, exp_avg_sq, c.lr, c.beta1, c.beta2, c.eps, c.weight_decay,
             step);
}

namespace cpu {
// decay = 1 - lr * wd; step_size = lr / (1 - b1^step); bc2_sqrt = sqrt(1 - b2^step).
void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, double decay, double beta1, double beta2, double eps,
                double step_size, double bc2_sqrt);
}  // namespace cpu

}  // namespace moegrad
