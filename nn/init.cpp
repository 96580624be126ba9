#include "nn/init.h"

#include "core/ops/unary.h"

namespace moegrad {

Tensor init_normal(const Shape& shape, const InitOptions& init) {
  if (init.gen == nullptr) return zeros(shape, init.dtype);
  return mul_scalar(randn(shape, *init.gen, init.dtype), init.std);
}

}  // namespace moegrad
