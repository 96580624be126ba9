// Backward rules of views: reshape the gradient back, transpose it back, or place it into a
// zero tensor of the input's shape (narrow, select).
#include "autograd/ops/views.h"

#include "core/ops/reduce.h"

namespace moegrad {
namespace {

BackwardFn reshape_back(const Shape& in_shape) {
  return [in_shape](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{g.reshape(in_shape)};
  };
}

}  // namespace

Variable view(const Variable& x, const Shape& shape) {
  return make_result(x.data().view(shape), "view", {x}, reshape_back(x.shape()));
}

Variable reshape(const Variable& x, const Shape& shape) {
  return make_result(x.data().reshape(shape), "reshape", {x}, reshape_back(x.shape()));
}

Variable squeeze(const Variable& x, int64_t dim) {
  return make_result(x.data().squeeze(dim), "squeeze", {x}, reshape_back(x.shape()));
}

Variable unsqueeze(const Variable& x, int64_t dim) {
  return make_result(x.data().unsqueeze(dim), "unsqueeze", {x}, reshape_back(x.shape()));
}

Variable transpose(const Variable& x, int64_t d0, int64_t d1) {
  return make_result(x.data().transpose(d0, d1), "transpose", {x},
                     [d0, d1](const Tensor& g, const std::vector<bool>&) {
                       return std::vector<Tensor>{g.transpose(d0, d1)};
                     });
}

Variable permute(const Variable& x, const std::vector<int64_t>& dims) {
  std::vector<int64_t> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i)
    inverse[normalize_dim(dims[i], int64_t(dims.size()), "permute")] = int64_t(i);
  return make_result(x.data().permute(dims), "permute", {x},
                     [inverse](const Tensor& g, const std::vector<bool>&) {
                       return std::vector<Tensor>{g.permute(inverse)};
                     });
}

Variable narrow(const Variable& x, int64_t dim, int64_t start, int64_t length) {
  Tensor out = x.data().narrow(dim, start, length);
  return make_result(out, "narrow", {x},
                     [s = x.shape(), dt = x.dtype(), dim, start, length](const Tensor& g,
                                                                         const std::vector<bool>&) {
                       Tensor gx = zeros(s, dt, g.device());
                       gx.narrow(dim, start, length).copy_(g);
                       return std::vector<Tensor>{gx};
                     });
}

Variable select(const Variable& x, int64_t dim, int64_t index) {
  Tensor out = x.data().select(dim, index);
  return make_result(out, "select", {x},
                     [s = x.shape(), dt = x.dtype(), dim, index](const Tensor& g,
                                                                 const std::vector<bool>&) {
                       Tensor gx = zeros(s, dt, g.device());
                       gx.select(dim, index).copy_(g);
                       return std::vector<Tensor>{gx};
                     });
}

Variable expand(const Variable& x, const Shape& shape) {
  return make_result(x.data().expand(shape), "expand", {x},
                     [s = x.shape()](const Tensor& g, const std::vector<bool>&) {
                       return std::vector<Tensor>{sum_to(g, s)};
                     });
}

Variable contiguous(const Variable& x) {
  if (x.data().is_contiguous()) return x;
  return make_result(x.data().contiguous(), "contiguous", {x},
                     [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g}; });
}

Variable to(const Variable& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  return make_result(x.data().to(dtype), "to", {x},
                     [dt = x.dtype()](const Tensor& g, const std::vector<bool>&) {
                       return std::vector<Tensor>{g.to(dt)};
                     });
}

}  // namespace moegrad
