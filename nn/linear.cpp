#include "nn/linear.h"

#include <utility>

#include "autograd/ops.h"
#include "core/error.h"
#include "core/profiler.h"

namespace moegrad {

Linear::Linear(int64_t in_features, int64_t out_features, const InitOptions& init)
    : weight_(register_parameter("weight", init_normal({out_features, in_features}, init))) {}

Linear::Linear(Tensor weight) : weight_(register_parameter("weight", std::move(weight))) {
  MOEGRAD_CHECK(weight_.dim() == 2, "Linear: weight must be [out, in], got ",
                shape_str(weight_.shape()));
}

Variable Linear::forward(const Variable& x) const {
  profiler::ModuleScope scope(this);
  return linear(x, weight_);
}

}  // namespace moegrad
