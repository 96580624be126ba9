#include "core/ops/join.h"

#include <algorithm>

namespace moegrad {
namespace {

void check_joinable(const char* op, const std::vector<Tensor>& xs) {
  MOEGRAD_CHECK(!xs.empty(), op, ": expected at least one tensor");
  for (size_t i = 0; i < xs.size(); ++i) {
    check_defined(op, xs[i], "input");
    check_same_device(op, xs[0], xs[i]);
    check_same_dtype(op, xs[0], xs[i]);
  }
}

std::vector<int64_t> chunk_sizes(int64_t size, int64_t chunk_size) {
  MOEGRAD_CHECK(chunk_size > 0, "split_chunks: chunk size must be positive, got ", chunk_size);
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < size; start += chunk_size)
    sizes.push_back(std::min(chunk_size, size - start));
  return sizes;
}

}  // namespace

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  check_joinable("concat", xs);
  int64_t d = normalize_dim(dim, xs[0].dim(), "concat");
  Shape shape = xs[0].shape();
  shape[d] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    Shape s = xs[i].shape();
    bool fits = s.size() == shape.size();
    for (size_t k = 0; fits && k < s.size(); ++k) fits = int64_t(k) == d || s[k] == shape[k];
    MOEGRAD_CHECK(fits, "concat: tensor ", i, " has shape ", shape_str(s), ", which differs from ",
                  shape_str(xs[0].shape()), " outside dim ", d);
    shape[d] += s[d];
  }
  Tensor out = empty(shape, xs[0].dtype(), xs[0].device());
  int64_t start = 0;
  for (const Tensor& x : xs) {
    out.narrow(d, start, x.size(d)).copy_(x);
    start += x.size(d);
  }
  return out;
}

Tensor concat_adjacent(const std::vector<Tensor>& xs) {
  check_joinable("concat_adjacent", xs);
  const Tensor& first = xs[0];
  if (first.dim() == 0) return concat(xs, 0);  // names the problem
  const Shape row(first.shape().begin() + 1, first.shape().end());
  int64_t rows = 0;
  for (const Tensor& x : xs) {
    const bool follows = x.is_contiguous() && x.shares_storage(first) && x.dim() == first.dim() &&
                         Shape(x.shape().begin() + 1, x.shape().end()) == row &&
                         x.offset() == first.offset() + rows * shape_numel(row);
    if (!follows) return concat(xs, 0);
    rows += x.size(0);
  }
  Shape shape = first.shape();
  shape[0] = rows;
  return first.as_strided(shape, contiguous_strides(shape), first.offset());
}

Tensor stack_adjacent(const std::vector<Tensor>& xs) {
  check_joinable("stack_adjacent", xs);
  const Tensor& first = xs[0];
  const int64_t step = xs.size() > 1 ? xs[1].offset() - first.offset() : first.numel();
  bool views = step > 0;
  for (size_t i = 0; views && i < xs.size(); ++i)
    views = xs[i].shares_storage(first) && xs[i].shape() == first.shape() &&
            xs[i].strides() == first.strides() &&
            xs[i].offset() == first.offset() + int64_t(i) * step;
  if (!views) return stack(xs, 0);
  Shape shape = first.shape(), strides = first.strides();
  shape.insert(shape.begin(), int64_t(xs.size()));
  strides.insert(strides.begin(), step);
  return first.as_strided(shape, strides, first.offset());
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  check_joinable("stack", xs);
  int64_t d = normalize_dim(dim, xs[0].dim() + 1, "stack");
  for (size_t i = 0; i < xs.size(); ++i)
    MOEGRAD_CHECK(xs[i].shape() == xs[0].shape(), "stack: tensor ", i, " has shape ",
                  shape_str(xs[i].shape()), ", tensor 0 has ", shape_str(xs[0].shape()));
  Shape shape = xs[0].shape();
  shape.insert(shape.begin() + d, int64_t(xs.size()));
  Tensor out = empty(shape, xs[0].dtype(), xs[0].device());
  for (size_t i = 0; i < xs.size(); ++i) out.select(d, int64_t(i)).copy_(xs[i]);
  return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  check_defined("split", x, "input");
  int64_t d = normalize_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    MOEGRAD_CHECK(s >= 0, "split: negative size ", s, " in ", shape_str(sizes));
    total += s;
  }
  MOEGRAD_CHECK(total == x.size(d), "split: sizes ", shape_str(sizes), " sum to ", total,
                ", not to the size ", x.size(d), " of dim ", d, " of shape ", shape_str(x.shape()));
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t s : sizes) {
    pieces.push_back(x.narrow(d, start, s));
    start += s;
  }
  return pieces;
}

std::vector<Tensor> split_chunks(const Tensor& x, int64_t chunk_size, int64_t dim) {
  check_defined("split_chunks", x, "input");
  int64_t d = normalize_dim(dim, x.dim(), "split_chunks");
  return split(x, chunk_sizes(x.size(d), chunk_size), d);
}

}  // namespace moegrad
