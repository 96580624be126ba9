// Fused softmax cross-entropy over logits [N, V] with integer targets [N]: the forward keeps
// one logsumexp per row instead of the [N, V] probabilities, and the backward rebuilds
// softmax - onehot from it row by row.
//
// Dtypes: f32 and f64 logits give a loss and lse of their own dtype. bf16 logits (an lm head
// under mixed precision) are computed in f32 and give an f32 loss and lse (losses stay f32);
// the backward then takes the f32 gradient of that loss and returns d loss / d logits in bf16,
// each element rounded once.
#pragma once
#include <cstdint>

#include "core/ops/index.h"  // IndexBounds
#include "core/tensor.h"

namespace moegrad {

enum class Reduction { Mean, Sum };

struct CrossEntropyOutput {
  Tensor loss;  // 0-dim: the logits' dtype, f32 for bf16 logits
  Tensor lse;   // [N], logsumexp of each row, saved for backward; the loss's dtype
};

// Rows whose target is ignore_index add nothing. Mean divides by the number of other rows;
// when every row is ignored the mean is 0 (torch gives NaN; 0 keeps a fully padded batch from
// poisoning the step). A target outside [0, V) that is not ignore_index is an error.
CrossEntropyOutput cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                         int64_t ignore_index = -100,
                                         Reduction reduction = Reduction::Mean);
// grad: 0-dim gradient of the loss, in the loss's dtype. Returns d loss / d logits, [N, V]
// contiguous, in the logits' dtype. The targets are checked unless `bounds` is Trusted: the
// forward's own targets, which it checked (on a GPU each check waits for the device).
Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& targets,
                              const Tensor& lse, int64_t ignore_index = -100,
                              Reduction reduction = Reduction::Mean,
                              IndexBounds bounds = IndexBounds::Checked);
// The same gradient written over `logits`, which must be contiguous; returns them. For a
// caller done with the logits: no second [N, V] buffer.
Tensor cross_entropy_backward_(const Tensor& grad, const Tensor& logits, const Tensor& targets,
                               const Tensor& lse, int64_t ignore_index = -100,
                               Reduction reduction = Reduction::Mean,
                               IndexBounds bounds = IndexBounds::Checked);
inline Tensor cross_entropy(const Tensor& logits, const Tensor& targets,
                            int64_t ignore_index = -100, Reduction reduction = Reduction::Mean) {
  return cross_entropy_forward(logits, targets, ignore_index, reduction).loss;
}

// Backends. logits: [N, V] with unit stride along V; targets: [N] contiguous and already
// validated; dlogits: [N, V] contiguous, possibly the logits themselves (each element is
// read before it is written, by the thread that writes it).
namespace cpu {
void cross_entropy_forward(const Tensor& loss, const Tensor& lse, const Tensor& logits,
                           const Tensor& targets, int64_t ignore_index, Reduction reduction);
void cross_entropy_backward(const Tensor& dlogits, const Tensor& grad, const Tensor& logits,
                            const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                            Reduction reduction);
}  // namespace cpu
namespace cuda {
void cross_entropy_forward(const Tensor& loss, const Tensor& lse, const Tensor& logits,
                           const Tensor& targets, int64_t ignore_index, Reduction reduction);
void cross_entropy_backward(const Tensor& dlogits, const Tensor& grad, const Tensor& logits,
                            const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                            Reduction reduction);
}  // namespace cuda

}  // namespace moegrad
