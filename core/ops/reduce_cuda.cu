#include "core/ops/reduce.h"

namespace moegrad::cuda {

void sum(const Tensor& out, const Tensor& x) {
  throw Error("sum: CUDA kernel pending");
}

}  // namespace moegrad::cuda
