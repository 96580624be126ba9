#include "nn/rotary.h"

#include "autograd/ops.h"
#include "core/error.h"

namespace moegrad {

RotaryEmbedding::RotaryEmbedding(int64_t head_dim, double theta)
    : head_dim_(head_dim), theta_(theta) {
  MOEGRAD_CHECK(head_dim > 0 && head_dim % 2 == 0, "RotaryEmbedding: head_dim ", head_dim,
                " must be positive and even");
  MOEGRAD_CHECK(theta > 0, "RotaryEmbedding: theta ", theta, " must be positive");
}

Variable RotaryEmbedding::apply(const Variable& x, const Tensor& positions) const {
  MOEGRAD_CHECK(x.dim() >= 2 && x.size(-1) == head_dim_, "RotaryEmbedding: input ",
                shape_str(x.shape()), " does not end in head_dim ", head_dim_);
  return rope(x, theta_, positions);
}

}  // namespace moegrad
