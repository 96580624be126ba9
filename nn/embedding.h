// Token embedding table: weight [V, H].
#pragma once
#include "nn/init.h"
#include "nn/module.h"

namespace moegrad {

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, const InitOptions& init = {});
  Variable forward(const Tensor& ids) const;  // [...] -> [..., H]
  const Variable& weight() const { return weight_; }

 private:
  Variable weight_;
};

}  // namespace moegrad
