// Linear without bias (HF layout): weight [out, in], y = x W^T.
#pragma once
#include "nn/init.h"
#include "nn/module.h"

namespace moegrad {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, const InitOptions& init = {});
  // Adopts `weight` [out, in] as the parameter's data without copying (a view into a larger
  // tensor stays a view: writing the parameter writes that tensor).
  explicit Linear(Tensor weight);
  Variable forward(const Variable& x) const;
  const Variable& weight() const { return weight_; }

 private:
  Variable weight_;
};

}  // namespace moegrad
