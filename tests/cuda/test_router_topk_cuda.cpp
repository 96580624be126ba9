#include <limits>

#include "core/ops/router_topk.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::gpu;
using testing::random_tensor;

// Logits on a grid of 1/32: two experts' logits are equal (equal probabilities on both
// backends, the tie to the lower index) or at least 1/32 apart, far beyond the backends'
// last-bit differences in exp, so the picks must agree exactly. Every fifth row masks a few
// experts with -inf.
Tensor grid_logits(int64_t n, int64_t e, uint64_t seed, DType dtype) {
  Generator gen(seed);
  std::vector<double> x = randint(-96, 96, {n, e}, gen).to_vector<double>();
  for (double& v : x) v /= 32;
  for (int64_t r = 0; r < n; r += 5)
    for (int64_t i = r % 3; i < e; i += 4) x[r * e + i] = -std::numeric_limits<double>::infinity();
  return from_vector(x, {n, e}).to(dtype);
}

// x_gpu: x's values on the device, in any layout.
void expect_parity(const Tensor& x, const Tensor& x_gpu, int64_t k, bool normalize) {
  SCOPED_TRACE("x " + shape_str(x.shape()) + ", k = " + std::to_string(k) +
               (normalize ? ", normalized" : ""));
  const bool f64 = x.dtype() == DType::F64;
  const double atol = f64 ? 1e-13 : 1e-6, rtol = f64 ? 1e-12 : 1e-5;
  const RouterTopk c = router_topk(x, k, normalize);
  const RouterTopk g = router_topk(x_gpu, k, normalize);
  EXPECT_EQ(g.indices.to_vector<int64_t>(), c.indices.to_vector<int64_t>());
  EXPECT_ALL_CLOSE(g.probs, c.probs, atol, rtol);
  EXPECT_ALL_CLOSE(g.weights, c.weights, atol, rtol);
  const Tensor grad = random_tensor(c.weights.shape(), uint64_t(k) + 7, x.dtype());
  const Tensor gc = router_topk_backward(grad, c.probs, c.indices, normalize);
  const Tensor gg = router_topk_backward(gpu(grad), g.probs, g.indices, normalize);
  EXPECT_ALL_CLOSE(gg, gc, atol, rtol);
}

TEST(RouterTopkCuda, MatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (DType dtype : {DType::F32, DType::F64})
    for (int64_t n : {1, 333})
      for (int64_t e : {3, 7, 32, 33, 64, 100}) {
        const Tensor x = grid_logits(n, e, uint64_t(n + e), dtype);
        for (int64_t k : {int64_t(1), int64_t(2), int64_t(8), e})
          if (k <= e)
            for (bool normalize : {false, true}) expect_parity(x, gpu(x), k, normalize);
      }
}

TEST(RouterTopkCuda, KAboveTheWarpAndStridedLogits) {
  SKIP_WITHOUT_GPU();
  const Tensor x = grid_logits(50, 100, 3, DType::F32);
  expect_parity(x, gpu(x), 100, true);
  expect_parity(x, gpu(x), 40, false);
  const Tensor base = grid_logits(64, 9, 4, DType::F32);
  const Tensor t = base.transpose(0, 1);  // [9, 64]
  expect_parity(t, testing::same_view(t, gpu(base)), 3, true);
}

TEST(RouterTopkCuda, EmptyBatch) {
  SKIP_WITHOUT_GPU();
  const RouterTopk r = router_topk(gpu(empty({0, 8}, DType::F32)), 2, true);
  EXPECT_EQ(r.weights.shape(), Shape({0, 2}));
  EXPECT_TRUE(r.indices.device().is_cuda());
  EXPECT_EQ(router_topk_backward(r.weights, r.probs, r.indices, true).shape(), Shape({0, 8}));
}

}  // namespace
}  // namespace moegrad
