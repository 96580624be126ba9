// Joining tensors along a dim and splitting them apart. concat and stack copy into narrow
// views of a fresh output with Tensor::copy_, so they run on any device without kernels of
// their own; split returns views.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace moegrad {

// Same rank, dtype and device; sizes equal except along dim.
Tensor concat(const std::vector<Tensor>& xs, int64_t dim = 0);
// concat(xs, 0) without a copy when the xs already lie back to back in one storage (each
// contiguous, each starting where the one before ends): a view of them all. Else a copy.
Tensor concat_adjacent(const std::vector<Tensor>& xs);
// Same shape, dtype and device; the result has a new dim of size xs.size() at `dim`
// (dim in [-(rank + 1), rank]).
Tensor stack(const std::vector<Tensor>& xs, int64_t dim = 0);
// stack(xs, 0) without a copy when the xs lie at equal distances in one storage with the same
// shape and strides (the slices of a stack): a view of them all. Else a copy.
Tensor stack_adjacent(const std::vector<Tensor>& xs);
// Views of consecutive pieces of x along dim, of the given sizes (which must sum to its size).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
// Views of consecutive pieces of chunk_size along dim; the last is shorter when chunk_size does
// not divide the size. (A separate name: split(x, {2}) would silently pick an int overload.)
std::vector<Tensor> split_chunks(const Tensor& x, int64_t chunk_size, int64_t dim = 0);

}  // namespace moegrad
