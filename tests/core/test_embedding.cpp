#include <functional>

#include "core/ops/embedding.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

using testing::error_of;

Tensor ref_embedding(const Tensor& weight, const Tensor& ids) {
  std::vector<double> w = weight.to_vector<double>(), out;
  const int64_t h = weight.size(1);
  for (int64_t id : ids.to_vector<int64_t>())
    for (int64_t j = 0; j < h; ++j) out.push_back(w[id * h + j]);
  Shape shape = ids.shape();
  shape.push_back(h);
  return from_vector(out, shape);
}

Tensor ref_embedding_backward(const Tensor& grad, const Tensor& ids, int64_t vocab) {
  const int64_t h = grad.size(-1);
  std::vector<double> g = grad.to_vector<double>(), out(vocab * h, 0.0);
  std::vector<int64_t> iv = ids.to_vector<int64_t>();
  for (size_t i = 0; i < iv.size(); ++i)
    for (int64_t j = 0; j < h; ++j) out[iv[i] * h + j] += g[i * h + j];
  return from_vector(out, {vocab, h});
}

TEST(Embedding, LooksUpRowsWithDuplicates) {
  Tensor w = from_vector<float>({0, 1, 10, 11, 20, 21}, {3, 2});
  Tensor ids = from_vector<int32_t>({2, 0, 2, 1}, {2, 2});
  Tensor out = embedding(w, ids);
  EXPECT_EQ(out.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{20, 21, 0, 1, 20, 21, 10, 11}));
}

TEST(Embedding, MatchesReferenceOnStridedInputs) {
  Tensor w = random_tensor({5, 7}, 1).t();  // [7, 5], column-major
  for (DType it : {DType::I32, DType::I64}) {
    Generator gen(2);
    Tensor ids = randint(0, 7, {4, 6}, gen, it).t();  // [6, 4], strided
    EXPECT_ALL_CLOSE(embedding(w, ids), ref_embedding(w, ids), 0, 0);
  }
  EXPECT_EQ(embedding(w, zeros({0}, DType::I64)).shape(), (Shape{0, 5}));
}

TEST(Embedding, BackwardSumsDuplicateIds) {
  Tensor ids = from_vector<int64_t>({1, 3, 1, 1}, {2, 2});
  Tensor g = from_vector<double>({1, 2, 10, 20, 100, 200, 1000, 2000}, {2, 2, 2});
  EXPECT_EQ(embedding_backward(g, ids, 4).to_vector<double>(),
            (std::vector<double>{0, 0, 1101, 2202, 0, 0, 10, 20}));
}

TEST(Embedding, BackwardMatchesReferenceOnStridedInputs) {
  for (DType it : {DType::I32, DType::I64}) {
    Generator gen(3);
    Tensor ids = randint(0, 9, {5, 8}, gen, it).t();         // [8, 5]
    Tensor g = random_tensor({70, 8, 5}, 4).permute({1, 2, 0});  // [8, 5, 70]
    EXPECT_ALL_CLOSE(embedding_backward(g, ids, 9), ref_embedding_backward(g, ids, 9), 1e-12,
                     1e-12);
  }
}

// A bf16 table gathers its rows exactly; the backward sums a bf16 gradient in f32 and rounds
// each sum once (a frequent id sums many rows).
TEST(EmbeddingBf16, ForwardExactBackwardSumsInF32) {
  Tensor w = random_tensor({11, 7}, 5, DType::BF16).t();  // [7, 11], column-major
  Generator gen(6);
  Tensor ids = randint(0, 7, {5, 9}, gen).t();  // [9, 5], strided
  Tensor out = embedding(w, ids);
  EXPECT_EQ(out.dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(out, ref_embedding(w, ids), 0, 0);
  Tensor frequent = zeros({300}, DType::I64);  // id 0, 300 times
  Tensor many = random_tensor({300, 11}, 7, DType::BF16);
  for (auto [g, i] : {std::pair{random_tensor({9, 5, 11}, 8, DType::BF16), ids},
                      std::pair{many, frequent}}) {
    Tensor d = embedding_backward(g, i, 7);
    EXPECT_EQ(d.dtype(), DType::BF16);
    Tensor ref = embedding_backward(g.to(DType::F32), i, 7);
    EXPECT_ALL_CLOSE(d, ref.to(DType::BF16), 0, 0);  // one rounding of the f32 sums
    EXPECT_ALL_CLOSE(d.to(DType::F32), ref, 1e-2, 1e-2);
  }
}

TEST(Embedding, Errors) {
  Tensor w = zeros({6, 4});
  EXPECT_EQ(error_of([&] { embedding(w, from_vector<int64_t>({0, 6}, {2})); }),
            "embedding: index 6 out of range [0, 6) for the rows of weight [6, 4]");
  EXPECT_EQ(error_of([&] { embedding(zeros({6}), from_vector<int64_t>({0}, {1})); }),
            "embedding: expected a weight of shape [V, H], got [6]");
  EXPECT_EQ(error_of([&] { embedding(w, zeros({2})); }),
            "embedding: expected an int32 or int64 index tensor, got float32");
  Tensor ids = from_vector<int32_t>({0, 1}, {2});
  EXPECT_EQ(error_of([&] { embedding_backward(zeros({3, 4}), ids, 6); }),
            "embedding_backward: grad shape [3, 4] must be the ids shape [2] plus a hidden dim");
  EXPECT_EQ(error_of([&] { embedding_backward(zeros({2, 4}), ids, 1); }),
            "embedding_backward: index 1 out of range [0, 1) for a vocabulary of 1");
}

}  // namespace
}  // namespace moegrad
