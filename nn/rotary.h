// Rotary position embedding, NeoX half layout (not interleaved): inv_freq[i] = theta^(-2i/D).
#pragma once
#include "autograd/variable.h"

namespace moegrad {

class RotaryEmbedding {
 public:
  RotaryEmbedding(int64_t head_dim, double theta);
  // x: [..., T, head_dim]; positions int [T], 0..T-1 when undefined.
  Variable apply(const Variable& x, const Tensor& positions = Tensor()) const;
  double theta() const { return theta_; }

 private:
  int64_t head_dim_;
  double theta_;
};

}  // namespace moegrad
