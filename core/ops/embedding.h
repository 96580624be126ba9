// Embedding lookup and its weight gradient. Both are row indexing along dim 0 of the weight,
// so they run on the gather and index_add kernels of core/ops/index.h and share their
// determinism: the backward sums duplicate ids in the order they appear in `ids`, on either
// backend, without atomics.
#pragma once
#include "core/tensor.h"

namespace moegrad {

// weight [V, H] (any dtype; bf16 under mixed precision), ids [...] (int32 or int64, each in
// [0, V)) -> [..., H], weight's dtype.
Tensor embedding(const Tensor& weight, const Tensor& ids);
// grad [..., H] (f32, f64 or bf16) -> [V, H] in grad's dtype: row v is the sum of the grad rows
// whose id is v. A bf16 grad is summed in f32 and each sum rounded once to bf16.
Tensor embedding_backward(const Tensor& grad, const Tensor& ids, int64_t vocab_size);

}  // namespace moegrad
