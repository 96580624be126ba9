// One AdamW step in place, with PyTorch's semantics (torch.optim.AdamW, amsgrad off):
//   p -= lr * wd * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps).
// Not differentiable: optimizers run outside the graph.
#pragma once
#include <cstdint>
#include <vector>

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
//
// Mixed precision: param may be the f32 master copy of a bf16 model parameter `bf16_param`
// (same shape and device), which then receives the updated master rounded to bf16 in the same
// pass, and grad may be bf16 (the model's gradient, widened to f32 for the update).
void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                double weight_decay, int64_t step, const Tensor& bf16_param = {});
inline void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                       const Tensor& exp_avg_sq, const AdamWConfig& c, int64_t step,
                       const Tensor& bf16_param = {}) {
  adamw_step(param, grad, exp_avg, exp_avg_sq, c.lr, c.beta1, c.beta2, c.eps, c.weight_decay,
             step, bf16_param);
}

// One tensor of a multi-tensor step, with its own lr, weight decay and step count: train::AdamW
// keeps them per parameter (group lr scale and decay; the step count of a parameter whose grad
// was undefined does not advance).
struct AdamWTensors {
  Tensor param, grad, exp_avg, exp_avg_sq;
  double lr = 1e-3;
  double weight_decay = 1e-2;
  int64_t step = 1;
  Tensor bf16_param{};  // defined: param is its f32 master (see adamw_step)
};

// adamw_step on every entry, with the same results bit for bit; an entry whose grad is undefined
// is skipped, nothing of it read or written (torch.optim's parameter whose .grad is None), so a
// list made once serves every step whichever parameters have gradients. On a GPU every entry whose
// tensors are contiguous is updated by ONE kernel launch per combination of param and grad
// dtype; the others fall back to a launch each. Entries must share one device and must not
// overlap one another. train::AdamW makes one such call per step (a piece per parameter, or per
// run of trained rows). Every gradient is read times grad_scale (rounded to the param's dtype;
// the product is not rounded to a bf16 gradient's dtype): gradient clipping's coefficient,
// without a pass that rescales the gradients in memory first. It must be finite and >= 0.
void adamw_step_multi(const std::vector<AdamWTensors>& tensors, double beta1, double beta2,
                      double eps, double grad_scale = 1.0);

// What the backends take per tensor: decay = 1 - lr * wd; step_size = lr / (1 - b1^step);
// bc2_sqrt = sqrt(1 - b2^step); grad_scale, what the gradient is read times.
struct AdamWCoefficients {
  double decay, step_size, bc2_sqrt, grad_scale;
};

namespace cpu {
void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const Tensor& bf16_param, const AdamWCoefficients& c,
                double beta1, double beta2, double eps);
// coefficients[i] belongs to tensors[i]; the entries are already validated.
void adamw_step_multi(const std::vector<AdamWTensors>& tensors,
                      const std::vector<AdamWCoefficients>& coefficients, double beta1,
                      double beta2, double eps);
}  // namespace cpu
namespace cuda {
void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const Tensor& bf16_param, const AdamWCoefficients& c,
                double beta1, double beta2, double eps);
void adamw_step_multi(const std::vector<AdamWTensors>& tensors,
                      const std::vector<AdamWCoefficients>& coefficients, double beta1,
                      double beta2, double eps);
}  // namespace cuda

}  // namespace moegrad
