// Differentiable embedding lookup: the gradient goes to the weight (ids are not differentiable).
#pragma once
#include "autograd/variable.h"

namespace moegrad {

// weight [V, H], ids [...] -> [..., H].
Variable embedding(const Variable& weight, const Tensor& ids);

}  // namespace moegrad
