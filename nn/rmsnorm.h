// RMSNorm over the last dim; weight [D] starts at 1, no bias.
#pragma once
#include "core/dtype.h"
#include "nn/module.h"

namespace moegrad {

class RMSNorm : public Module {
 public:
  RMSNorm(int64_t dim, double eps, DType dtype = DType::F32);
  Variable forward(const Variable& x) const;
  const Variable& weight() const { return weight_; }
  double eps() const { return eps_; }

 private:
  Variable weight_;
  double eps_;
};

}  // namespace moegrad
