#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "core/ops/router_topk.h"
#include "core/ops/softmax.h"
#include "core/ops/topk.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::expect_error;
using testing::random_tensor;

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Reference {
  std::vector<double> probs, weights;
  std::vector<int64_t> indices;
};

// Each row's softmax in long double, then a stable sort by probability (descending: equal
// probabilities keep index order), its first k renormalised when asked.
Reference reference(const Tensor& logits, int64_t k, bool normalize) {
  const int64_t n = logits.size(0), e = logits.size(1);
  const std::vector<double> x = logits.to_vector<double>();
  Reference ref;
  for (int64_t r = 0; r < n; ++r) {
    const double* row = x.data() + r * e;
    const double m = *std::max_element(row, row + e);
    long double z = 0;
    for (int64_t i = 0; i < e; ++i) z += std::exp((long double)(row[i] - m));
    std::vector<double> p(e);
    for (int64_t i = 0; i < e; ++i) p[i] = double(std::exp((long double)(row[i] - m)) / z);
    std::vector<int64_t> order(e);
    for (int64_t i = 0; i < e; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    double s = 0;
    for (int64_t j = 0; j < k; ++j) s += p[order[j]];
    for (int64_t j = 0; j < k; ++j) {
      ref.indices.push_back(order[j]);
      ref.weights.push_back(normalize ? p[order[j]] / s : p[order[j]]);
    }
    ref.probs.insert(ref.probs.end(), p.begin(), p.end());
  }
  return ref;
}

void expect_matches_reference(const Tensor& logits, int64_t k, bool normalize, double tol) {
  const RouterTopk r = router_topk(logits, k, normalize);
  const int64_t n = logits.size(0), e = logits.size(1);
  ASSERT_EQ(r.probs.shape(), Shape({n, e}));
  ASSERT_EQ(r.weights.shape(), Shape({n, k}));
  ASSERT_EQ(r.indices.dtype(), DType::I64);
  EXPECT_EQ(r.probs.dtype(), logits.dtype());
  EXPECT_EQ(r.weights.dtype(), logits.dtype());
  const Reference ref = reference(logits, k, normalize);
  EXPECT_EQ(r.indices.to_vector<int64_t>(), ref.indices) << "k = " << k << " " << normalize;
  EXPECT_ALL_CLOSE(r.probs, from_vector(ref.probs, {n, e}).to(logits.dtype()), tol, tol);
  EXPECT_ALL_CLOSE(r.weights, from_vector(ref.weights, {n, k}).to(logits.dtype()), tol, tol);
}

TEST(RouterTopk, MatchesSoftmaxThenSortedTopK) {
  for (DType dtype : {DType::F64, DType::F32}) {
    const double tol = dtype == DType::F64 ? 1e-13 : 1e-6;
    const Tensor x = random_tensor({9, 13}, 1, dtype);
    for (int64_t k : {1, 2, 5, 13})
      for (bool normalize : {false, true}) expect_matches_reference(x, k, normalize, tol);
  }
}

// The probabilities are the softmax op's bits, the unnormalised picks the topk op's.
TEST(RouterTopk, SameBitsAsSoftmaxAndTopK) {
  const Tensor x = random_tensor({40, 64}, 2, DType::F32);
  const RouterTopk r = router_topk(x, 8, false);
  const Tensor p = softmax(x, -1);
  EXPECT_ALL_CLOSE(r.probs, p, 0, 0);
  auto [values, indices] = topk(p, 8);
  EXPECT_EQ(r.indices.to_vector<int64_t>(), indices.to_vector<int64_t>());
  EXPECT_ALL_CLOSE(r.weights, values, 0, 0);
}

TEST(RouterTopk, TiesGoToTheLowerIndex) {
  const Tensor x = from_vector<float>({1, 2, 2, 0, 2, 3, 3, 3, 3, 3}, {2, 5});
  const RouterTopk r = router_topk(x, 3, true);
  EXPECT_EQ(r.indices.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 4, 0, 1, 2}));
  const std::vector<float> w = r.weights.to_vector<float>();
  for (int j = 0; j < 6; ++j) EXPECT_FLOAT_EQ(w[j], 1.0f / 3) << j;
  expect_matches_reference(x, 3, true, 1e-6);
}

// Masked experts (-inf logits) have probability 0 and are picked only after every finite one,
// in index order.
TEST(RouterTopk, MaskedExpertsPickedLast) {
  const Tensor x = from_vector<double>({-kInf, 0.5, -kInf, 1.0, 0.2}, {1, 5});
  const RouterTopk r3 = router_topk(x, 3, false);
  EXPECT_EQ(r3.indices.to_vector<int64_t>(), (std::vector<int64_t>{3, 1, 4}));
  EXPECT_EQ(r3.probs.to_vector<double>()[0], 0.0);
  EXPECT_EQ(r3.probs.to_vector<double>()[2], 0.0);
  const RouterTopk r5 = router_topk(x, 5, true);
  EXPECT_EQ(r5.indices.to_vector<int64_t>(), (std::vector<int64_t>{3, 1, 4, 0, 2}));
  const std::vector<double> w = r5.weights.to_vector<double>();
  EXPECT_NEAR(w[0] + w[1] + w[2], 1.0, 1e-15);
  EXPECT_EQ(w[3], 0.0);
  EXPECT_EQ(w[4], 0.0);
  expect_matches_reference(x, 5, true, 1e-15);
}

TEST(RouterTopk, StridedLogitsGiveTheContiguousResult) {
  const Tensor base = random_tensor({11, 6}, 3, DType::F32);
  for (const Tensor& x : {base.transpose(0, 1), base.narrow(1, 1, 4)}) {
    ASSERT_FALSE(x.is_contiguous());
    const RouterTopk strided = router_topk(x, 2, true);
    const RouterTopk dense = router_topk(x.contiguous(), 2, true);
    EXPECT_ALL_CLOSE(strided.probs, dense.probs, 0, 0);
    EXPECT_ALL_CLOSE(strided.weights, dense.weights, 0, 0);
    EXPECT_EQ(strided.indices.to_vector<int64_t>(), dense.indices.to_vector<int64_t>());
  }
}

TEST(RouterTopk, EmptyBatch) {
  const RouterTopk r = router_topk(empty({0, 5}, DType::F32), 2, true);
  EXPECT_EQ(r.probs.shape(), Shape({0, 5}));
  EXPECT_EQ(r.weights.shape(), Shape({0, 2}));
  EXPECT_EQ(r.indices.shape(), Shape({0, 2}));
  const Tensor g = router_topk_backward(r.weights, r.probs, r.indices, true);
  EXPECT_EQ(g.shape(), Shape({0, 5}));
}

// The fused backward against autograd through the composition it replaces.
TEST(RouterTopk, BackwardMatchesSoftmaxTopKDivideBySum) {
  const Tensor x = random_tensor({6, 9}, 4);
  for (int64_t k : {1, 3, 9})
    for (bool normalize : {false, true}) {
      const Tensor g = random_tensor({6, k}, 5 + uint64_t(k));
      const Variable xv(x, true);
      auto [values, idx] = topk(softmax(xv, -1), k);
      const Variable w = normalize ? div(values, sum(values, {-1}, true)) : values;
      w.backward(g);
      const RouterTopk r = router_topk(x, k, normalize);
      EXPECT_EQ(r.indices.to_vector<int64_t>(), idx.to_vector<int64_t>());
      EXPECT_ALL_CLOSE(router_topk_backward(g, r.probs, r.indices, normalize), xv.grad(), 1e-15,
                       1e-12)
          << "k = " << k << ", normalize " << normalize;
    }
}

TEST(RouterTopk, ArgumentErrors) {
  const Tensor x = random_tensor({4, 5}, 6, DType::F32);
  expect_error([&] { router_topk(random_tensor({5}, 1), 1, false); },
               "router_topk: expected logits [N, E], got shape [5]");
  expect_error([&] { router_topk(random_tensor({2, 3, 4}, 1), 1, false); }, "got shape [2, 3, 4]");
  expect_error([&] { router_topk(x.to(DType::BF16), 1, false); },
               "float32 or float64 logits, got bfloat16");
  expect_error([&] { router_topk(x.to(DType::I64), 1, false); },
               "router_topk: expected float32 or float64");
  expect_error([&] { router_topk(x, 0, false); }, "router_topk: k = 0 out of range [1, 5]");
  expect_error([&] { router_topk(x, 6, false); },
               "k = 6 out of range [1, 5] for logits of shape [4, 5]");

  const RouterTopk r = router_topk(x, 2, false);
  expect_error([&] { router_topk_backward(r.weights.narrow(1, 0, 1), r.probs, r.indices, false); },
               "router_topk: backward expects");
  expect_error(
      [&] {
        router_topk_backward(r.weights.narrow(0, 0, 3), r.probs, r.indices.narrow(0, 0, 3), false);
      },
      "probs [4, 5]");
  expect_error([&] { router_topk_backward(r.weights, r.probs, r.indices.to(DType::I32), false); },
               "router_topk: expected int64 indices, got int32");
  expect_error([&] { router_topk_backward(r.weights.to(DType::F64), r.probs, r.indices, false); },
               "router_topk");
}

}  // namespace
}  // namespace moegrad
