#include "nn/rmsnorm.h"

#include "autograd/ops.h"
#include "core/profiler.h"

namespace moegrad {

RMSNorm::RMSNorm(int64_t dim, double eps, DType dtype)
    : weight_(register_parameter("weight", ones({dim}, dtype))), eps_(eps) {}

Variable RMSNorm::forward(const Variable& x) const {
  profiler::ModuleScope scope(this);
  return rmsnorm(x, weight_, eps_);
}

}  // namespace moegrad
