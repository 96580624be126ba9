// Embedding lookup and its weight gradient. Both are row indexing along dim 0 of the weight,
// so they run on the gather and index_add kernels of core/ops/index.h and share their
// determinism: the backward sums duplicate ids in the order they appear in `ids`, on either
// backend, without atomics.
#pragma once
#include "core/tensor.h"

namespace moegrad {

// weight [V, H], ids [...] (int32 or int64, each in [0, V)) -> [..., H].
Tensor embedding(const Tensor& weight, const Tensor& ids);
// grad [..., H] -> [V, H]: row v is the sum of the grad rows whose id is v.
Tensor embedding_backward(const Tensor& grad, const Tensor& ids, int64_t vocab_size);

}  // namespace moegrad
