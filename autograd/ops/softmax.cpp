#include "autograd/ops/softmax.h"

#include "core/ops/softmax.h"

namespace moegrad {

Variable softmax(const Variable& x, int64_t dim) {
  Tensor y = softmax(x.data(), dim);
  return make_result(y, "softmax", {x}, [y, dim](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{softmax_backward(g, y, dim)};
  });
}

Variable log_softmax(const Variable& x, int64_t dim) {
  Tensor y = log_softmax(x.data(), dim);
  return make_result(y, "log_softmax", {x}, [y, dim](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{log_softmax_backward(g, y, dim)};
  });
}

}  // namespace moegrad
