// Backward rules of reductions: the output's gradient, with the reduced dims restored as size
// 1, broadcast back over the input; scaled for mean, masked to the maxima for amax and max.
#include "autograd/ops/reduce.h"

#include <algorithm>

#include "core/ops/binary.h"
#include "core/ops/compare.h"
#include "core/ops/reduce.h"
#include "core/ops/unary.h"

namespace moegrad {
namespace {

// The input's shape with size 1 along the reduced dims (all dims when `dims` is empty). Call
// after the forward op, which has checked `dims`.
Shape kept_shape(const Shape& shape, const std::vector<int64_t>& dims, const char* op) {
  Shape s = shape;
  if (dims.empty()) std::fill(s.begin(), s.end(), 1);
  for (int64_t d : dims) s[normalize_dim(d, int64_t(shape.size()), op)] = 1;
  return s;
}

}  // namespace

Variable sum(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = sum(x.data(), dims, keepdim);
  return make_result(out, "sum", {x},
                     [s = x.shape(), kept = kept_shape(x.shape(), dims, "sum")](
                         const Tensor& g, const std::vector<bool>&) {
                       return std::vector<Tensor>{g.reshape(kept).expand(s)};
                     });
}

Variable mean(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = mean(x.data(), dims, keepdim);
  Shape kept = kept_shape(x.shape(), dims, "mean");
  int64_t count = 1;  // dims of size 1 in `kept` are reduced or of size 1 anyway
  for (int64_t d = 0; d < x.dim(); ++d)
    if (kept[d] == 1) count *= x.size(d);
  return make_result(out, "mean", {x},
                     [s = x.shape(), kept, count](const Tensor& g, const std::vector<bool>&) {
                       return std::vector<Tensor>{
                           mul_scalar(g.reshape(kept), 1.0 / double(count)).expand(s)};
                     });
}

Variable amax(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = amax(x.data(), dims, keepdim);
  Shape kept = kept_shape(x.shape(), dims, "amax");
  return make_result(out, "amax", {x},
                     [xd = x.data(), out_k = out.reshape(kept), kept, dims](
                         const Tensor& g, const std::vector<bool>&) {
                       Tensor hit = eq(xd, out_k).to(g.dtype());
                       Tensor share = div(g.reshape(kept), sum(hit, dims, true));
                       return std::vector<Tensor>{mul(hit, share)};
                     });
}

Variable logsumexp(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = logsumexp(x.data(), dims, keepdim);
  Shape kept = kept_shape(x.shape(), dims, "logsumexp");
  // d/dx logsumexp(x) = exp(x - logsumexp(x)), the softmax of x.
  return make_result(out, "logsumexp", {x},
                     [xd = x.data(), out_k = out.reshape(kept), kept](
                         const Tensor& g, const std::vector<bool>&) {
                       return std::vector<Tensor>{mul(exp(sub(xd, out_k)), g.reshape(kept))};
                     });
}

std::pair<Variable, Tensor> max(const Variable& x, int64_t dim, bool keepdim) {
  auto [values, indices] = max(x.data(), dim, keepdim);
  int64_t d = normalize_dim(dim, x.dim(), "max");
  Shape kept = x.shape();
  kept[d] = 1;
  Variable v = make_result(
      values, "max", {x},
      [s = x.shape(), idx_k = indices.reshape(kept), kept, d](const Tensor& g,
                                                              const std::vector<bool>&) {
        Shape along(s.size(), 1);
        along[d] = s[d];
        Tensor pos = arange(s[d], DType::I64, g.device()).view(along);
        Tensor hit = eq(pos, idx_k).to(g.dtype());  // one-hot along d, broadcast to s
        return std::vector<Tensor>{mul(hit, g.reshape(kept))};
      });
  return {v, indices};
}

Tensor argmax(const Variable& x, int64_t dim, bool keepdim) {
  return argmax(x.data(), dim, keepdim);
}

}  // namespace moegrad
