// Backward rule of embedding: the weight gradient sums the output gradient rows of equal ids
// (core/ops/embedding.h, deterministic on both backends).
#include "autograd/ops/embedding.h"

#include "core/ops/embedding.h"

namespace moegrad {

Variable embedding(const Variable& weight, const Tensor& ids) {
  return make_result(embedding(weight.data(), ids), "embedding", {weight},
                     [ids, vocab = weight.size(0)](const Tensor& g, const std::vector<bool>&) {
                       return std::vector<Tensor>{embedding_backward(g, ids, vocab)};
                     });
}

}  // namespace moegrad
