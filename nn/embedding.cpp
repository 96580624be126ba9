#include "nn/embedding.h"

#include "autograd/ops.h"
#include "core/profiler.h"

namespace moegrad {

Embedding::Embedding(int64_t num_embeddings, int64_t dim, const InitOptions& init)
    : weight_(register_parameter("weight", init_normal({num_embeddings, dim}, init))) {}

Variable Embedding::forward(const Tensor& ids) const {
  profiler::ModuleScope scope(this);
  return embedding(weight_, ids);
}

}  // namespace moegrad
