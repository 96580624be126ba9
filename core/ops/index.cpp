#include "core/ops/index.h"

#include <cstdint>

#include "core/ops/compare.h"
#include "core/ops/dispatch.h"
#include "core/storage.h"

namespace moegrad {
namespace {

void check_operands(const char* op, const Tensor& x, const Tensor& idx) {
  check_defined(op, x, "input");
  check_defined(op, idx, "index");
  check_same_device(op, x, idx);
}

// index_add and scatter_add sum into x: compute floats or integers, never bool or f16.
void check_accumulable(const char* op, const Tensor& x, const Tensor& src) {
  check_defined(op, src, "source");
  check_same_device(op, x, src);
  check_same_dtype(op, x, src);
  DType t = x.dtype();
  MOEGRAD_CHECK(t == DType::F32 || t == DType::F64 || t == DType::BF16 || is_integral(t), op,
                ": expected a float32, float64, bfloat16, int32 or int64 input, got ",
                dtype_name(t));
}

std::string dim_of(int64_t dim, const Tensor& x) {
  return detail::concat("dim ", dim, " of input shape ", shape_str(x.shape()));
}

// `strides` with the entry of `dim` set to 0: a view of x that stays at index 0 along dim,
// to which the kernels add idx * stride(dim).
Shape zero_at(Shape strides, int64_t dim) {
  strides[dim] = 0;
  return strides;
}

void check_index_type(const char* op, const Tensor& idx) {
  MOEGRAD_CHECK(is_integral(idx.dtype()), op, ": expected an int32 or int64 index tensor, got ",
                dtype_name(idx.dtype()));
}

// The values' range is checked unless the caller vouches for it; the dtype always is.
void check_index(const char* op, const Tensor& idx, int64_t size, const std::string& what,
                 IndexBounds bounds) {
  if (bounds == IndexBounds::Checked) {
    check_index_range(op, idx, size, what);
  } else {
    check_index_type(op, idx);
  }
}

}  // namespace

void check_index_range(const char* op, const Tensor& idx, int64_t size, const std::string& what) {
  check_index_type(op, idx);
  if (idx.numel() == 0) return;
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // idx's copy, the result's
  int64_t lo = 0, hi = 0;
  MOEGRAD_DISPATCH(idx.device(), op, index_min_max, idx, lo, hi);
  int64_t bad = lo < 0 ? lo : hi;
  MOEGRAD_CHECK(lo >= 0 && hi < size, op, ": index ", bad, " out of range [0, ", size, ") for ",
                what);
}

DeviceIndexGroups group_by_index_on_device(const Tensor& idx, int64_t groups,
                                           const std::string& what) {
  check_defined("group_by_index", idx, "index");
  check_index_type("group_by_index", idx);
  MOEGRAD_CHECK(idx.dim() == 2, "group_by_index: expected a 2-d index tensor [N, k], got shape ",
                shape_str(idx.shape()));
  MOEGRAD_CHECK(groups > 0 && groups < INT32_MAX,
                "group_by_index: groups must lie in [1, 2^31 - 1), got ", groups);
  const int64_t n = idx.numel();
  MOEGRAD_CHECK(n < INT32_MAX, "group_by_index: at most 2^31 - 2 entries, got ", n);
  const Device dev = idx.device();
  const Tensor summary = empty({groups + 3}, DType::I64, dev);
  DeviceIndexGroups g{empty({n}, DType::I32, dev),
                      empty({n}, DType::I32, dev),
                      summary.narrow(0, 0, groups + 1),
                      HostRead(),
                      what,
                      idx.size(0)};
  if (n == 0) {
    // Nothing to sort; a range of [0, 0] passes the check.
    summary.zero_();
  } else {
    const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // idx's copy, the sort's
    MOEGRAD_DISPATCH(dev, "group_by_index", group_by_index, idx.contiguous(), g.order, g.row,
                     summary);
  }
  g.summary = HostRead(summary);
  if (!dev.is_cuda()) g.host_start();
  return g;
}

std::vector<int64_t> DeviceIndexGroups::host_start() const {
  const std::vector<int64_t>& values = summary.values();
  const size_t groups = values.size() - 3;
  const int64_t lo = values[groups + 1], hi = values[groups + 2];
  MOEGRAD_CHECK(lo >= 0 && hi < int64_t(groups), "group_by_index: index ", lo < 0 ? lo : hi,
                " out of range [0, ", groups, ") for ", what);
  return {values.begin(), values.begin() + std::ptrdiff_t(groups) + 1};
}

std::vector<int64_t> group_sizes(const std::vector<int64_t>& start) {
  std::vector<int64_t> sizes(start.empty() ? 0 : start.size() - 1);
  for (size_t g = 0; g < sizes.size(); ++g) sizes[g] = start[g + 1] - start[g];
  return sizes;
}

IndexGroups group_by_index(const Tensor& idx, int64_t groups, const std::string& what) {
  DeviceIndexGroups g = group_by_index_on_device(idx, groups, what);
  return {g.order, g.row, g.host_start()};
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& idx, IndexBounds bounds) {
  check_operands("index_select", x, idx);
  int64_t d = normalize_dim(dim, x.dim(), "index_select");
  MOEGRAD_CHECK(idx.dim() == 1, "index_select: expected a 1-d index tensor, got shape ",
                shape_str(idx.shape()));
  check_index("index_select", idx, x.size(d), dim_of(d, x), bounds);
  Shape shape = x.shape();
  shape[d] = idx.numel();
  Tensor out = empty(shape, x.dtype(), x.device());
  Shape idx_strides(shape.size(), 0);
  idx_strides[d] = idx.stride(0);
  Tensor xv = x.as_strided(shape, zero_at(x.strides(), d), x.offset());
  Tensor iv = idx.as_strided(shape, idx_strides, idx.offset());
  MOEGRAD_DISPATCH(x.device(), "index_select", gather, out, xv, iv, x.stride(d));
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& idx, IndexBounds bounds) {
  check_operands("gather", x, idx);
  int64_t d = normalize_dim(dim, x.dim(), "gather");
  MOEGRAD_CHECK(idx.dim() == x.dim(), "gather: index shape ", shape_str(idx.shape()),
                " must have the rank of input shape ", shape_str(x.shape()));
  for (int64_t k = 0; k < x.dim(); ++k)
    MOEGRAD_CHECK(k == d || idx.size(k) <= x.size(k), "gather: index shape ",
                  shape_str(idx.shape()), " exceeds input shape ", shape_str(x.shape()),
                  " in dim ", k);
  check_index("gather", idx, x.size(d), dim_of(d, x), bounds);
  Tensor out = empty(idx.shape(), x.dtype(), x.device());
  Tensor xv = x.as_strided(idx.shape(), zero_at(x.strides(), d), x.offset());
  MOEGRAD_DISPATCH(x.device(), "gather", gather, out, xv, idx, x.stride(d));
  return out;
}

namespace {

// out (x's values, or zeros) += src's rows at idx along dim: index_add's checks and kernel.
Tensor add_rows(Tensor out, int64_t dim, const Tensor& idx, const Tensor& src,
                IndexBounds bounds) {
  check_operands("index_add", out, idx);
  check_accumulable("index_add", out, src);
  int64_t d = normalize_dim(dim, out.dim(), "index_add");
  MOEGRAD_CHECK(idx.dim() == 1, "index_add: expected a 1-d index tensor, got shape ",
                shape_str(idx.shape()));
  Shape src_shape = out.shape();
  src_shape[d] = idx.numel();
  MOEGRAD_CHECK(src.shape() == src_shape, "index_add: source shape ", shape_str(src.shape()),
                " must be ", shape_str(src_shape), " (input shape ", shape_str(out.shape()),
                " with the index's ", idx.numel(), " entries along dim ", d, ")");
  check_index("index_add", idx, out.size(d), dim_of(d, out), bounds);
  if (idx.numel() == 0 || out.numel() == 0) return out;
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < d; ++k) outer *= out.size(k);
  for (int64_t k = d + 1; k < out.dim(); ++k) inner *= out.size(k);
  // The output exists: operand copies and the kernel's sort buffers are workspace.
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  MOEGRAD_DISPATCH(out.device(), "index_add", index_add, out.view({outer, out.size(d), inner}),
                   idx.contiguous(), src.contiguous().view({outer, idx.numel(), inner}));
  return out;
}

}  // namespace

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src,
                 IndexBounds bounds) {
  check_defined("index_add", x, "input");
  return add_rows(x.clone(), dim, idx, src, bounds);
}

Tensor index_add_to_zeros(const Shape& shape, int64_t dim, const Tensor& idx, const Tensor& src,
                          IndexBounds bounds) {
  check_defined("index_add", src, "source");
  return add_rows(zeros(shape, src.dtype(), src.device()), dim, idx, src, bounds);
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src,
                   IndexBounds bounds) {
  check_operands("scatter_add", x, idx);
  check_accumulable("scatter_add", x, src);
  int64_t d = normalize_dim(dim, x.dim(), "scatter_add");
  MOEGRAD_CHECK(src.shape() == idx.shape(), "scatter_add: source shape ", shape_str(src.shape()),
                " differs from index shape ", shape_str(idx.shape()));
  MOEGRAD_CHECK(idx.dim() == x.dim(), "scatter_add: index shape ", shape_str(idx.shape()),
                " must have the rank of input shape ", shape_str(x.shape()));
  for (int64_t k = 0; k < x.dim(); ++k)
    MOEGRAD_CHECK(k == d || idx.size(k) <= x.size(k), "scatter_add: index shape ",
                  shape_str(idx.shape()), " exceeds input shape ", shape_str(x.shape()),
                  " in dim ", k);
  check_index("scatter_add", idx, x.size(d), dim_of(d, x), bounds);
  Tensor out = x.clone();
  if (idx.numel() == 0) return out;
  MOEGRAD_DISPATCH(x.device(), "scatter_add", scatter_add, out, d, idx, src);
  return out;
}

Tensor one_hot(const Tensor& idx, int64_t num_classes, DType dtype, IndexBounds bounds) {
  check_defined("one_hot", idx, "index");
  MOEGRAD_CHECK(num_classes >= 0, "one_hot: num_classes must be >= 0, got ", num_classes);
  check_index("one_hot", idx, num_classes, detail::concat(num_classes, " classes"), bounds);
  Shape shape = idx.shape();
  shape.push_back(num_classes);
  Tensor out = empty(shape, dtype, idx.device());
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // the classes, the comparison
  out.copy_(eq(idx.unsqueeze(-1), arange(0, num_classes, 1, idx.dtype(), idx.device())));
  return out;
}

}  // namespace moegrad
