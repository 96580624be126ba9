#include "core/ops/adamw.h"

#include <cmath>

#include "core/ops/dispatch.h"

namespace moegrad {

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                double weight_decay, int64_t step) {
  const char* op = "adamw_step";
  check_defined(op, param, "param");
  check_defined(op, grad, "grad");
  check_defined(op, exp_avg, "exp_avg");
  check_defined(op, exp_avg_sq, "exp_avg_sq");
  for (const Tensor* t : {&grad, &exp_avg, &exp_avg_sq}) {
    check_same_device(op, param, *t);
    check_same_dtype(op, param, *t);
    MOEGRAD_CHECK(t->shape() == param.shape(), op, ": param ", shape_str(param.shape()),
                  ", grad ", shape_str(grad.shape()), ", exp_avg ", shape_str(exp_avg.shape()),
                  " and exp_avg_sq ", shape_str(exp_avg_sq.shape()), " must share one shape");
  }
  MOEGRAD_CHECK(step >= 1, op, ": step counts from 1, got ", step);
  MOEGRAD_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, op,
                ": betas must lie in [0, 1), got ", beta1, " and ", beta2);
  MOEGRAD_CPU_ONLY(param.device(), op);
  const double bc1 = 1.0 - std::pow(beta1, double(step));
  const double bc2 = 1.0 - std::pow(beta2, double(step));
  cpu::adamw_step(param, grad, exp_avg, exp_avg_sq, 1.0 - lr * weight_decay, beta1, beta2, eps,
                  lr / bc1, std::sqrt(bc2));
}

}  // namespace moegrad
