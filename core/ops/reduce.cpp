#include "core/ops/reduce.h"

#include <cmath>

#include "core/ops/dispatch.h"
#include "core/storage.h"

namespace moegrad {
namespace {

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Mean: return "mean";
    case ReduceOp::Amax: return "amax";
    case ReduceOp::LogSumExp: return "logsumexp";
  }
  return "reduce";
}

// A reduction's output shapes and its input seen as [outer, R, inner].
struct Plan {
  Shape kept;     // x's shape with size 1 along the reduced dims (keepdim)
  Shape dropped;  // x's shape without the reduced dims
  int64_t reduced_numel = 1;
  Tensor x3;  // undefined when x is empty
};

// Size and stride of `dims` (in order, none of size 1) read as one dim, when the strides allow.
bool merge(const Tensor& x, const std::vector<int64_t>& dims, int64_t& size, int64_t& stride) {
  size = 1;
  stride = dims.empty() ? 1 : x.stride(dims.back());
  for (size_t k = 0; k < dims.size(); ++k) {
    if (k > 0 && x.stride(dims[k - 1]) != x.stride(dims[k]) * x.size(dims[k])) return false;
    size *= x.size(dims[k]);
  }
  return true;
}

Plan plan(const char* op, const Tensor& x, const std::vector<int64_t>& dims) {
  check_defined(op, x, "input");
  MOEGRAD_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::F64 || x.dtype() == DType::BF16,
                op, ": expected a float32, float64 or bfloat16 tensor, got ",
                dtype_name(x.dtype()));
  std::vector<bool> reduced(x.dim(), dims.empty());
  for (int64_t d : dims) {
    int64_t n = normalize_dim(d, x.dim(), op);
    MOEGRAD_CHECK(!reduced[n], op, ": dim ", d, " repeated in dims ", shape_str(dims),
                  " for input of shape ", shape_str(x.shape()));
    reduced[n] = true;
  }
  Plan p;
  // Dims of size 1 are irrelevant to the layout; the rest form outer | reduced | inner groups
  // when the reduced ones are adjacent.
  std::vector<int64_t> outer, red, inner, kept_dims, red_dims;
  bool adjacent = true;
  for (int64_t d = 0; d < x.dim(); ++d) {
    p.kept.push_back(reduced[d] ? 1 : x.size(d));
    if (reduced[d]) {
      p.reduced_numel *= x.size(d);
      red_dims.push_back(d);
    } else {
      p.dropped.push_back(x.size(d));
      kept_dims.push_back(d);
    }
    if (x.size(d) == 1) continue;
    if (reduced[d]) {
      adjacent &= inner.empty();
      red.push_back(d);
    } else {
      (red.empty() ? outer : inner).push_back(d);
    }
  }
  if (x.numel() == 0) return p;

  int64_t no, so, nr, sr, ni, si;
  if (adjacent && merge(x, outer, no, so) && merge(x, red, nr, sr) && merge(x, inner, ni, si)) {
    // Rows whose elements lie further apart than the rows themselves (a transposed input):
    // walking them as columns side by side reads memory in order.
    if (ni == 1 && no > 1 && so < sr) {
      std::swap(no, ni);
      std::swap(so, si);
    }
    p.x3 = x.as_strided({no, nr, ni}, {so, sr, si}, x.offset());
  } else {
    // Interleaved or unmergeable dims: copy with the reduced dims innermost.
    std::vector<int64_t> perm = kept_dims;
    perm.insert(perm.end(), red_dims.begin(), red_dims.end());
    Tensor c;
    {
      const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // the op's own copy
      c = x.permute(perm).contiguous();
    }
    nr = p.reduced_numel;
    p.x3 = c.as_strided({x.numel() / nr, nr, 1}, {nr, 1, 1}, c.offset());
  }
  return p;
}

std::pair<Tensor, Tensor> max_with_index(const char* op, const Tensor& x, int64_t dim,
                                         bool keepdim) {
  Plan p = plan(op, x, {dim});
  MOEGRAD_CHECK(p.reduced_numel > 0, op, ": cannot reduce over dim ", dim, " of size 0 in shape ",
                shape_str(x.shape()));
  Tensor values = empty(p.kept, x.dtype(), x.device());
  Tensor indices = empty(p.kept, DType::I64, x.device());
  if (values.numel() > 0) {
    const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // the device's partial results
    MOEGRAD_DISPATCH(x.device(), op, argmax, values, indices, p.x3);
  }
  if (keepdim) return {values, indices};
  return {values.view(p.dropped), indices.view(p.dropped)};
}

}  // namespace

Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const char* name = op_name(op);
  Plan p = plan(name, x, dims);
  MOEGRAD_CHECK(op != ReduceOp::Amax || p.reduced_numel > 0, name,
                ": cannot reduce over an empty dim (input shape ", shape_str(x.shape()),
                ", dims ", shape_str(dims), ")");
  Tensor out = empty(p.kept, x.dtype(), x.device());
  if (out.numel() > 0) {
    if (x.numel() == 0) {
      out.fill_(op == ReduceOp::Sum ? 0.0 : op == ReduceOp::Mean ? NAN : -INFINITY);
    } else {
      // The device's partial results.
      const MemoryCategoryScope workspace(MemoryCategory::Workspace);
      MOEGRAD_DISPATCH(x.device(), name, reduce, op, out, p.x3);
    }
  }
  return keepdim ? out : out.view(p.dropped);
}

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  return max_with_index("max", x, dim, keepdim);
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  return max_with_index("argmax", x, dim, keepdim).second;
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
