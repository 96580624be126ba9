// Differentiable softmax and log-softmax along one dim; their backward works from the output.
#pragma once
#include "autograd/variable.h"

namespace moegrad {

Variable softmax(const Variable& x, int64_t dim);
Variable log_softmax(const Variable& x, int64_t dim);

}  // namespace moegrad
