#include "autograd/ops/embedding.h"
#include "core/ops/embedding.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

using testing::gpu;

TEST(EmbeddingCuda, ForwardAndBackwardMatchCpu) {
  SKIP_WITHOUT_GPU();
  Tensor w = random_tensor({67, 50}, 1, DType::F32).t();  // [50, 67], strided
  for (DType it : {DType::I32, DType::I64}) {
    Generator gen(2);
    // 1000 tokens over 50 rows: every row is hit many times.
    Tensor ids = randint(0, 50, {8, 125}, gen, it);
    EXPECT_ALL_CLOSE(embedding(gpu(w), gpu(ids)), embedding(w, ids), 0, 0);
    Tensor g = random_tensor({8, 125, 67}, 3, DType::F32);
    Tensor cpu = embedding_backward(g, ids, 50);
    Tensor cuda = embedding_backward(gpu(g), gpu(ids), 50);
    EXPECT_ALL_CLOSE(cuda, cpu, 0, 0);
    EXPECT_ALL_CLOSE(embedding_backward(gpu(g), gpu(ids), 50), cuda, 0, 0);  // run to run
  }
}

// A bf16 table: exact rows; the backward's f32 sums (in index order on both backends) are
// rounded once, so the two backends agree exactly.
TEST(EmbeddingCuda, Bf16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  Tensor w = random_tensor({67, 50}, 6, DType::BF16).t();  // [50, 67], strided
  Generator gen(7);
  Tensor ids = randint(0, 50, {8, 125}, gen);
  Tensor out = embedding(gpu(w), gpu(ids));
  EXPECT_EQ(out.dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(out, embedding(w, ids), 0, 0);
  Tensor g = random_tensor({8, 125, 67}, 8, DType::BF16);
  Tensor cuda = embedding_backward(gpu(g), gpu(ids), 50);
  EXPECT_EQ(cuda.dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(cuda, embedding_backward(g, ids, 50), 0, 0);
}

TEST(EmbeddingCuda, AutogradGradientMatchesCpu) {
  SKIP_WITHOUT_GPU();
  Tensor w = random_tensor({11, 5}, 4, DType::F32);
  Tensor ids = from_vector<int64_t>({3, 3, 10, 0, 3, 7}, {2, 3});
  Tensor g = random_tensor({2, 3, 5}, 5, DType::F32);
  Variable wc(w.clone(), true), wg(gpu(w), true);
  embedding(wc, ids).backward(g);
  embedding(wg, gpu(ids)).backward(gpu(g));
  EXPECT_ALL_CLOSE(wg.grad(), wc.grad(), 0, 0);
  EXPECT_THROW(embedding(gpu(w), gpu(from_vector<int64_t>({11}, {1}))), Error);
}

}  // namespace
}  // namespace moegrad
