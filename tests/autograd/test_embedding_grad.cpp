#include "autograd/ops/binary.h"
#include "autograd/ops/embedding.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(EmbeddingGrad, DuplicateIdsBothIndexDtypes) {
  Tensor w = random_tensor({5, 3}, 1);
  for (DType it : {DType::I32, DType::I64}) {
    Tensor ids = from_vector<int64_t>({4, 1, 4, 4, 0, 1}, {2, 3}).to(it);
    EXPECT_GRADCHECK([&](const auto& v) { return embedding(v[0], ids); }, {w});
  }
}

TEST(EmbeddingGrad, StridedWeightAndIds) {
  Tensor w = random_tensor({3, 5}, 2).t();  // [5, 3]
  Tensor ids = from_vector<int64_t>({2, 2, 0, 4, 2, 1}, {3, 2}).t();  // [2, 3]
  EXPECT_GRADCHECK([&](const auto& v) { return mul(embedding(v[0], ids), embedding(v[0], ids)); },
                   {w});
}

// A bf16 table: its gradient is bf16, the f32 sums of the bf16 upstream rows rounded once.
TEST(EmbeddingGradBf16, DuplicateIds) {
  Tensor w = random_tensor({6, 5}, 3, DType::BF16);
  Tensor ids = from_vector<int64_t>({4, 1, 4, 4, 0, 1, 4}, {7});
  Tensor g = random_tensor({7, 5}, 4, DType::BF16);
  Variable v(w, true), v32(w.to(DType::F32), true);
  embedding(v, ids).backward(g);
  embedding(v32, ids).backward(g.to(DType::F32));
  EXPECT_EQ(v.grad().dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(v.grad().to(DType::F32), v32.grad(), 1e-2, 1e-2);
}

}  // namespace
}  // namespace moegrad
