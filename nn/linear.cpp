#include "nn/linear.h"

#include "autograd/ops.h"

namespace moegrad {

Linear::Linear(int64_t in_features, int64_t out_features, const InitOptions& init)
    : weight_(register_parameter("weight", init_normal({out_features, in_features}, init))) {}

Variable Linear::forward(const Variable& x) const { return linear(x, weight_); }

}  // namespace moegrad
