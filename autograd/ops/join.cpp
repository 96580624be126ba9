// Backward rules of joins: each input of concat receives its narrow of the gradient, each
// input of stack its select.
#include "autograd/ops/join.h"

#include "autograd/ops/views.h"
#include "core/ops/join.h"

namespace moegrad {
namespace {

std::vector<Tensor> data_of(const std::vector<Variable>& xs) {
  std::vector<Tensor> ts;
  for (const Variable& x : xs) ts.push_back(x.data());
  return ts;
}

// `pieces` are core's views of x along d; the same ranges as differentiable narrows.
std::vector<Variable> narrows(const Variable& x, int64_t d, const std::vector<Tensor>& pieces) {
  std::vector<Variable> out;
  int64_t start = 0;
  for (const Tensor& p : pieces) {
    out.push_back(narrow(x, d, start, p.size(d)));
    start += p.size(d);
  }
  return out;
}

}  // namespace

Variable concat(const std::vector<Variable>& xs, int64_t dim) {
  Tensor out = concat(data_of(xs), dim);
  int64_t d = normalize_dim(dim, out.dim(), "concat");
  std::vector<int64_t> sizes;
  for (const Variable& x : xs) sizes.push_back(x.size(d));
  return make_result(out, "concat", xs,
                     [d, sizes](const Tensor& g, const std::vector<bool>& need) {
                       std::vector<Tensor> grads;
                       int64_t start = 0;
                       for (size_t i = 0; i < sizes.size(); ++i) {
                         grads.push_back(need[i] ? g.narrow(d, start, sizes[i]) : Tensor());
                         start += sizes[i];
                       }
                       return grads;
                     });
}

Variable stack(const std::vector<Variable>& xs, int64_t dim) {
  Tensor out = stack(data_of(xs), dim);
  int64_t d = normalize_dim(dim, out.dim(), "stack");
  return make_result(out, "stack", xs,
                     [d, n = xs.size()](const Tensor& g, const std::vector<bool>& need) {
                       std::vector<Tensor> grads;
                       for (size_t i = 0; i < n; ++i)
                         grads.push_back(need[i] ? g.select(d, int64_t(i)) : Tensor());
                       return grads;
                     });
}

std::vector<Variable> split(const Variable& x, const std::vector<int64_t>& sizes, int64_t dim) {
  std::vector<Tensor> pieces = split(x.data(), sizes, dim);
  return narrows(x, normalize_dim(dim, x.dim(), "split"), pieces);
}

std::vector<Variable> split_chunks(const Variable& x, int64_t chunk_size, int64_t dim) {
  std::vector<Tensor> pieces = split_chunks(x.data(), chunk_size, dim);
  return narrows(x, normalize_dim(dim, x.dim(), "split_chunks"), pieces);
}

}  // namespace moegrad
