// Backward rules of indexing. Each select-like op and its add-like op are each other's
// gradient: index_select <-> index_add, gather <-> scatter_add.
#include "autograd/ops/index.h"

namespace moegrad {

Variable index_select(const Variable& x, int64_t dim, const Tensor& idx, IndexBounds bounds) {
  return make_result(index_select(x.data(), dim, idx, bounds), "index_select", {x},
                     [s = x.shape(), dim, idx](const Tensor& g, const std::vector<bool>&) {
                       return std::vector<Tensor>{
                           index_add_to_zeros(s, dim, idx, g, IndexBounds::Trusted)};
                     });
}

Variable index_add(const Variable& x, int64_t dim, const Tensor& idx, const Variable& src,
                   IndexBounds bounds) {
  return make_result(index_add(x.data(), dim, idx, src.data(), bounds), "index_add", {x, src},
                     [dim, idx](const Tensor& g, const std::vector<bool>& need) {
                       return std::vector<Tensor>{
                           need[0] ? g : Tensor(),
                           need[1] ? index_select(g, dim, idx, IndexBounds::Trusted) : Tensor()};
                     });
}

Variable index_add_to_zeros(const Shape& shape, int64_t dim, const Tensor& idx,
                            const Variable& src, IndexBounds bounds) {
  return make_result(index_add_to_zeros(shape, dim, idx, src.data(), bounds), "index_add", {src},
                     [dim, idx](const Tensor& g, const std::vector<bool>&) {
                       return std::vector<Tensor>{index_select(g, dim, idx, IndexBounds::Trusted)};
                     });
}

Variable gather(const Variable& x, int64_t dim, const Tensor& idx) {
  return make_result(gather(x.data(), dim, idx), "gather", {x},
                     [s = x.shape(), dim, idx](const Tensor& g, const std::vector<bool>&) {
                       Tensor zero = zeros(s, g.dtype(), g.device());
                       return std::vector<Tensor>{
                           scatter_add(zero, dim, idx, g, IndexBounds::Trusted)};
                     });
}

Variable scatter_add(const Variable& x, int64_t dim, const Tensor& idx, const Variable& src) {
  return make_result(scatter_add(x.data(), dim, idx, src.data()), "scatter_add", {x, src},
                     [dim, idx](const Tensor& g, const std::vector<bool>& need) {
                       return std::vector<Tensor>{
                           need[0] ? g : Tensor(),
                           need[1] ? gather(g, dim, idx, IndexBounds::Trusted) : Tensor()};
                     });
}

}  // namespace moegrad
