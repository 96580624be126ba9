#include "core/ops/adamw.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "core/ops/dispatch.h"
#include "core/storage.h"

namespace moegrad {
namespace {

void check_tensors(const char* op, const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                   const Tensor& exp_avg_sq, const Tensor& bf16_param, int64_t step) {
  check_defined(op, param, "param");
  check_defined(op, grad, "grad");
  check_defined(op, exp_avg, "exp_avg");
  check_defined(op, exp_avg_sq, "exp_avg_sq");
  const bool mixed = bf16_param.defined();
  for (const Tensor* t : {&grad, &exp_avg, &exp_avg_sq, &bf16_param}) {
    if (!t->defined()) continue;
    check_same_device(op, param, *t);
    MOEGRAD_CHECK(t->shape() == param.shape(), op, ": param ", shape_str(param.shape()),
                  ", grad ", shape_str(grad.shape()), ", exp_avg ", shape_str(exp_avg.shape()),
                  " and exp_avg_sq ", shape_str(exp_avg_sq.shape()),
                  mixed ? " and bf16_param " + shape_str(bf16_param.shape()) : std::string(),
                  " must share one shape");
  }
  check_same_dtype(op, param, exp_avg);
  check_same_dtype(op, param, exp_avg_sq);
  if (mixed) {
    MOEGRAD_CHECK(param.dtype() == DType::F32 && bf16_param.dtype() == DType::BF16, op,
                  ": a master copy must be float32 and its model parameter bfloat16, got ",
                  dtype_name(param.dtype()), " and ", dtype_name(bf16_param.dtype()));
  }
  MOEGRAD_CHECK(grad.dtype() == param.dtype() || (mixed && grad.dtype() == DType::BF16), op,
                ": grad is ", dtype_name(grad.dtype()), ", expected ", dtype_name(param.dtype()),
                mixed ? " or bfloat16" : "");
  MOEGRAD_CHECK(step >= 1, op, ": step counts from 1, got ", step);
}

void check_betas(const char* op, double beta1, double beta2) {
  MOEGRAD_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, op,
                ": betas must lie in [0, 1), got ", beta1, " and ", beta2);
}

AdamWCoefficients coefficients(double lr, double weight_decay, double beta1, double beta2,
                               int64_t step, double grad_scale) {
  const double bc1 = 1.0 - std::pow(beta1, double(step));
  const double bc2 = 1.0 - std::pow(beta2, double(step));
  return {1.0 - lr * weight_decay, lr / bc1, std::sqrt(bc2), grad_scale};
}

}  // namespace

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                double weight_decay, int64_t step, const Tensor& bf16_param) {
  const char* op = "adamw_step";
  check_tensors(op, param, grad, exp_avg, exp_avg_sq, bf16_param, step);
  check_betas(op, beta1, beta2);
  const AdamWCoefficients c = coefficients(lr, weight_decay, beta1, beta2, step, 1.0);
  MOEGRAD_DISPATCH(param.device(), op, adamw_step, param, grad, exp_avg, exp_avg_sq, bf16_param,
                   c, beta1, beta2, eps);
}

void adamw_step_multi(const std::vector<AdamWTensors>& tensors, double beta1, double beta2,
                      double eps, double grad_scale) {
  const char* op = "adamw_step_multi";
  check_betas(op, beta1, beta2);
  MOEGRAD_CHECK(std::isfinite(grad_scale) && grad_scale >= 0, op,
                ": grad_scale must be finite and >= 0, got ", grad_scale);
  const auto with_grad = std::find_if(tensors.begin(), tensors.end(),
                                      [](const AdamWTensors& t) { return t.grad.defined(); });
  if (with_grad == tensors.end()) return;
  const Tensor& first = with_grad->param;
  std::vector<AdamWCoefficients> cs;
  cs.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const AdamWTensors& t = tensors[i];
    if (!t.grad.defined()) {
      cs.emplace_back();  // never read: the backends skip the entry
      continue;
    }
    // Named in a stack buffer: a string built per tensor cost more than the checks, thousands a
    // step.
    char where[64];
    std::snprintf(where, sizeof where, "%s (tensor %zu)", op, i);
    check_tensors(where, t.param, t.grad, t.exp_avg, t.exp_avg_sq, t.bf16_param, t.step);
    check_same_device(op, first, t.param);
    cs.push_back(coefficients(t.lr, t.weight_decay, beta1, beta2, t.step, grad_scale));
  }
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // the device's table of tensors
  MOEGRAD_DISPATCH(first.device(), op, adamw_step_multi, tensors, cs, beta1, beta2, eps);
}

}  // namespace moegrad
