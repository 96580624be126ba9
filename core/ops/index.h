// Indexing by integer tensors: index_select / gather read rows or elements at given positions;
// index_add / scatter_add add rows or elements into them; one_hot. Index tensors are int32 or
// int64 and every index must lie in [0, size) of the indexed dim (no negative wrap-around);
// an index outside it throws naming the op, the index and the valid range.
//
// The accumulating ops are deterministic on both backends: every output element receives its
// contributions one at a time, in increasing order of their position in the index tensor,
// starting from x. CPU and CUDA therefore agree bit for bit. On bf16, index_add sums each
// output element in f32 and rounds it once (it gathers many rows: embedding gradients, the
// experts' combine); scatter_add rounds after each addition (its uses add one or a few values
// per element).
#pragma once
#include <string>
#include <vector>

#include "core/host_read.h"
#include "core/tensor.h"

namespace moegrad {

// Whether an op checks its index values. Checked (the default) throws on an index out of
// range, which on CUDA costs a host synchronisation (check_index_range). Trusted skips the
// check, for indices known to be in range: a backward rule reusing its forward's index against
// the same size, or indices built in range on the host (an MoE layer's dispatch). A Trusted
// index out of range reads or writes out of bounds.
enum class IndexBounds { Checked, Trusted };

// out = x with dim of size idx.numel(): out[.., i, ..] = x[.., idx[i], ..]. idx is 1-d.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& idx,
                    IndexBounds bounds = IndexBounds::Checked);
// out = x, then out[.., idx[i], ..] += src[.., i, ..] for each i. src has x's shape except
// idx.numel() along dim. Accumulates f32, f64, bf16, i32 or i64.
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src,
                 IndexBounds bounds = IndexBounds::Checked);
// index_add onto zeros of `shape`, in src's dtype and on its device: rows no index names are
// 0. Bit-identical to index_add(zeros(shape, ...), ...) without copying the zeros (the gradient
// of index_select, an MoE layer's combine).
Tensor index_add_to_zeros(const Shape& shape, int64_t dim, const Tensor& idx, const Tensor& src,
                          IndexBounds bounds = IndexBounds::Checked);
// out has idx's shape (same rank as x, idx.size(d) <= x.size(d) for d != dim), and
// out[i][j][k] = x[i][idx[i][j][k]][k] for dim = 1.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& idx,
              IndexBounds bounds = IndexBounds::Checked);
// out = x, then out[i][idx[i][j][k]][k] += src[i][j][k] for dim = 1. src has idx's shape.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src,
                   IndexBounds bounds = IndexBounds::Checked);
// out[..., c] = (idx[...] == c) for c in [0, num_classes), in `dtype`.
Tensor one_hot(const Tensor& idx, int64_t num_classes, DType dtype = DType::I64,
               IndexBounds bounds = IndexBounds::Checked);

// The entries of a 2-d index tensor idx [N, k] grouped by value, stably: an MoE layer's
// dispatch, where row n holds token n's k experts. `order` lists the flat positions 0..N*k-1
// sorted by value (equal values keep their order), `row` the row of each (order / k), both
// int32 on idx's device. `start` (on the host) has groups + 1 entries: value v's positions are
// order[start[v] .. start[v + 1]). Throws "group_by_index: index <v> out of range [0, groups)
// for <what>". On CUDA a stable radix sort on the device, then one host synchronisation, which
// brings back `start` and the values' range: the counts are all the host needs to plan the
// experts' GEMMs, and the positions never cross to it.
struct IndexGroups {
  Tensor order, row;
  std::vector<int64_t> start;
};
IndexGroups group_by_index(const Tensor& idx, int64_t groups, const std::string& what);
// Each group's size from its starts [G + 1]: start[g + 1] - start[g].
std::vector<int64_t> group_sizes(const std::vector<int64_t>& start);

// group_by_index without the host synchronisation: `start` (int64 [groups + 1]) stays on idx's
// device for kernels that read it there (gathered_grouped_matmul), and the host reads it, with
// the range check, only when host_start() is first called, by which time the device has usually
// sorted (an MoE layer's backward). On the CPU the range is checked at once. On a GPU, values out
// of range leave `order`, `row` and `start` meaningless but in bounds until host_start() throws.
struct DeviceIndexGroups {
  Tensor order, row, start;
  // start's values on the host; throws as group_by_index when a value lies out of range.
  std::vector<int64_t> host_start() const;

  HostRead summary;  // start, then the values' min and max
  std::string what;
  int64_t index_rows = 0;  // N, the grouped index's rows: `row` lies in [0, N)
};
DeviceIndexGroups group_by_index_on_device(const Tensor& idx, int64_t groups,
                                           const std::string& what);

// Throws "<op>: index <v> out of range [0, <size>) for <what>" when an element of idx lies
// outside [0, size). On CUDA, idx is reduced to its min and max on the device and the two
// values are copied back: a host synchronisation per call.
void check_index_range(const char* op, const Tensor& idx, int64_t size, const std::string& what);

namespace cpu {
// The smallest and largest element of a non-empty index tensor.
void index_min_max(const Tensor& idx, int64_t& lo, int64_t& hi);
// idx [N, k] contiguous. summary (int64 [groups + 3]) gets start (groups + 1 entries) and then
// idx's min and max; order and row ([N * k], int32) are filled only if every value is in range.
void group_by_index(const Tensor& idx, const Tensor& order, const Tensor& row,
                    const Tensor& summary);
// For every element e of out's shape: out[e] = the element idx[e] * x_dim_stride past x[e],
// where x (its stride along the indexed dim zeroed) and idx are views over out's shape.
void gather(const Tensor& out, const Tensor& x, const Tensor& idx, int64_t x_dim_stride);
// out ([outer, V, inner], contiguous, holding x) += src ([outer, n, inner], contiguous) rows
// idx ([n], contiguous).
void index_add(const Tensor& out, const Tensor& idx, const Tensor& src);
// out (contiguous, holding x) += src along `dim` at idx, both idx and src of idx's shape.
void scatter_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src);
}  // namespace cpu
namespace cuda {
void index_min_max(const Tensor& idx, int64_t& lo, int64_t& hi);
void group_by_index(const Tensor& idx, const Tensor& order, const Tensor& row,
                    const Tensor& summary);
void gather(const Tensor& out, const Tensor& x, const Tensor& idx, int64_t x_dim_stride);
void index_add(const Tensor& out, const Tensor& idx, const Tensor& src);
void scatter_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src);
}  // namespace cuda

}  // namespace moegrad
