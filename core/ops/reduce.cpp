#include "core/ops/reduce.h"

#include <algorithm>

#include "core/ops/dispatch.h"

namespace moegrad {
namespace {

// x's shape with size 1 along `dims` (all dims when empty).
Shape kept_shape(const Tensor& x, const std::vector<int64_t>& dims, const char* op,
                 std::vector<bool>& reduced) {
  reduced.assign(x.dim(), dims.empty());
  for (int64_t d : dims) reduced[normalize_dim(d, x.dim(), op)] = true;
  Shape s = x.shape();
  for (int64_t d = 0; d < x.dim(); ++d)
    if (reduced[d]) s[d] = 1;
  return s;
}

Tensor drop_reduced(const Tensor& t, const std::vector<bool>& reduced) {
  Shape s;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (!reduced[d]) s.push_back(t.size(d));
  return t.view(s);
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_defined("sum", x, "input");
  std::vector<bool> reduced;
  Tensor out = empty(kept_shape(x, dims, "sum", reduced), x.dtype(), x.device());
  MOEGRAD_DISPATCH(x.device(), "sum", sum, out, x);
  return keepdim ? out : drop_reduced(out, reduced);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  MOEGRAD_CHECK(shape.size() <= size_t(x.dim()), "sum_to: cannot reduce shape ",
                shape_str(x.shape()), " to ", shape_str(shape));
  size_t lead = x.dim() - shape.size();
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (size_t(d) < lead) {
      dims.push_back(d);
    } else if (shape[d - lead] == 1 && x.size(d) != 1) {
      dims.push_back(d);
    } else {
      MOEGRAD_CHECK(shape[d - lead] == x.size(d), "sum_to: cannot reduce shape ",
                    shape_str(x.shape()), " to ", shape_str(shape));
    }
  }
  if (dims.empty()) return x.view(shape);
  return sum(x, dims, true).view(shape);
}

}  // namespace moegrad
