#include <omp.h>

#include <cmath>

#include "core/ops/cross_entropy.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

using testing::expect_error;

struct Naive {
  double loss;
  Tensor dlogits;  // for an upstream gradient of 1
};

// -log_softmax(x)[t] over kept rows, from an explicit log-softmax in f64.
Naive naive_cross_entropy(const Tensor& logits, const std::vector<int64_t>& targets,
                          int64_t ignore_index, Reduction reduction) {
  const int64_t N = logits.size(0), V = logits.size(1);
  std::vector<double> x = logits.contiguous().to_vector<double>(), d(x.size(), 0.0);
  double total = 0;
  int64_t count = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == ignore_index) continue;
    ++count;
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < V; ++j) m = std::max(m, x[n * V + j]);
    for (int64_t j = 0; j < V; ++j) s += std::exp(x[n * V + j] - m);
    for (int64_t j = 0; j < V; ++j) {
      const double logp = x[n * V + j] - m - std::log(s);
      if (j == targets[n]) total -= logp;
      d[n * V + j] = std::exp(logp) - (j == targets[n]);
    }
  }
  const double scale = reduction == Reduction::Sum ? 1.0 : (count ? 1.0 / count : 0.0);
  for (double& v : d) v *= scale;
  return {total * scale, from_vector(d, logits.shape())};
}

TEST(CrossEntropy, MatchesNaiveLogSoftmaxWithIgnoredRows) {
  Tensor logits = random_tensor({5, 7}, 1);
  std::vector<int64_t> t{3, -100, 0, 6, -100};
  Tensor targets = from_vector(t, {5});
  for (Reduction red : {Reduction::Mean, Reduction::Sum}) {
    Naive ref = naive_cross_entropy(logits, t, -100, red);
    CrossEntropyOutput out = cross_entropy_forward(logits, targets, -100, red);
    EXPECT_NEAR(out.loss.item(), ref.loss, 1e-13);
    EXPECT_EQ(out.loss.dim(), 0);
    Tensor d = cross_entropy_backward(ones({}, DType::F64), logits, targets, out.lse, -100, red);
    EXPECT_ALL_CLOSE(d, ref.dlogits, 1e-14, 1e-12);
  }
  // float32 logits and int32 targets, a custom ignore_index.
  std::vector<int64_t> t2{3, 1, 0, 6, 1};
  Naive ref = naive_cross_entropy(logits, t2, 1, Reduction::Mean);
  Tensor t32 = from_vector<int32_t>({3, 1, 0, 6, 1}, {5});
  CrossEntropyOutput out = cross_entropy_forward(logits.to(DType::F32), t32, 1);
  EXPECT_NEAR(out.loss.item(), ref.loss, 1e-6);
  Tensor d = cross_entropy_backward(ones({}), logits.to(DType::F32), t32, out.lse, 1);
  EXPECT_ALL_CLOSE(d, ref.dlogits, 1e-7, 1e-5);
}

TEST(CrossEntropy, StridedLogits) {
  std::vector<int64_t> t{2, 0, 4};
  Tensor targets = from_vector(t, {3});
  Tensor wide = random_tensor({3, 9}, 2).narrow(1, 2, 5);  // row stride 9
  EXPECT_NEAR(cross_entropy(wide, targets).item(),
              naive_cross_entropy(wide, t, -100, Reduction::Mean).loss, 1e-13);
  Tensor transposed = random_tensor({5, 3}, 3).t();
  CrossEntropyOutput out = cross_entropy_forward(transposed, targets);
  Naive ref = naive_cross_entropy(transposed, t, -100, Reduction::Mean);
  EXPECT_NEAR(out.loss.item(), ref.loss, 1e-13);
  EXPECT_ALL_CLOSE(cross_entropy_backward(full({}, 1.0, DType::F64), transposed, targets, out.lse),
                   ref.dlogits, 1e-14, 1e-12);
}

TEST(CrossEntropy, LargeLogitsStayFinite) {
  Tensor logits = from_vector<float>({1000, 0, -1000, 500}, {2, 2});
  Tensor targets = from_vector<int64_t>({1, 0}, {2});
  // Row 0: lse = 1000, loss 1000; row 1: lse = 500, loss 1500. Mean 1250.
  EXPECT_FLOAT_EQ(float(cross_entropy(logits, targets).item()), 1250.0f);
}

TEST(CrossEntropy, EveryRowIgnoredGivesZero) {
  Tensor logits = random_tensor({3, 4}, 4);
  Tensor targets = full({3}, -100.0, DType::I64);
  CrossEntropyOutput out = cross_entropy_forward(logits, targets);
  EXPECT_EQ(out.loss.item(), 0.0);
  Tensor d = cross_entropy_backward(ones({}, DType::F64), logits, targets, out.lse);
  EXPECT_ALL_CLOSE(d, zeros({3, 4}, DType::F64), 0, 0);
}

TEST(CrossEntropy, DoesNotDependOnThreadCount) {
  Tensor logits = random_tensor({300, 200}, 5, DType::F32);
  Generator gen(6);
  Tensor targets = randint(0, 200, {300}, gen);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  CrossEntropyOutput one = cross_entropy_forward(logits, targets);
  omp_set_num_threads(3);
  CrossEntropyOutput three = cross_entropy_forward(logits, targets);
  omp_set_num_threads(threads);
  EXPECT_EQ(one.loss.item(), three.loss.item());
  EXPECT_EQ(one.lse.to_vector<float>(), three.lse.to_vector<float>());
}

// bf16 logits: f32 arithmetic, an f32 loss and lse, a bf16 dlogits from the f32 upstream
// gradient. The reference is the f32 op on the same (bf16-valued) logits.
TEST(CrossEntropyBf16, F32LossAndBf16Gradient) {
  Tensor targets = from_vector<int64_t>({3, -100, 0, 36, 5, 11, -100}, {7});
  Tensor contiguous = random_tensor({7, 37}, 20, DType::BF16);
  Tensor transposed = random_tensor({37, 7}, 21, DType::BF16).t();  // [7, 37], column-major
  for (const Tensor& logits : {contiguous, transposed})
    for (Reduction red : {Reduction::Mean, Reduction::Sum}) {
      SCOPED_TRACE(::testing::Message() << "contiguous " << logits.is_contiguous() << " sum "
                                        << (red == Reduction::Sum));
      CrossEntropyOutput out = cross_entropy_forward(logits, targets, -100, red);
      CrossEntropyOutput ref = cross_entropy_forward(logits.to(DType::F32), targets, -100, red);
      EXPECT_EQ(out.loss.dtype(), DType::F32);
      EXPECT_EQ(out.lse.dtype(), DType::F32);
      EXPECT_NEAR(out.loss.item(), ref.loss.item(), 1e-5);
      EXPECT_ALL_CLOSE(out.lse, ref.lse, 1e-5, 1e-5);
      Tensor g = full({}, 0.75, DType::F32);
      Tensor d = cross_entropy_backward(g, logits, targets, out.lse, -100, red);
      EXPECT_EQ(d.dtype(), DType::BF16);
      Tensor d_ref = cross_entropy_backward(g, logits.to(DType::F32), targets, ref.lse, -100, red);
      EXPECT_ALL_CLOSE(d.to(DType::F32), d_ref, 1e-2, 1e-2);
      // The ignored rows' gradients are exactly zero.
      EXPECT_ALL_CLOSE(d.select(0, 1), zeros({37}, DType::BF16), 0, 0);
    }
}

TEST(CrossEntropyBf16, BackwardWantsTheLossDtype) {
  Tensor logits = random_tensor({3, 5}, 22, DType::BF16);
  Tensor targets = from_vector<int64_t>({1, 2, 3}, {3});
  CrossEntropyOutput out = cross_entropy_forward(logits, targets);
  expect_error([&] { cross_entropy_backward(ones({}, DType::BF16), logits, targets, out.lse); },
               "cross_entropy_backward: expected a float32 grad for bfloat16 logits, got bfloat16");
  expect_error([&] { cross_entropy(logits.to(DType::F16), targets); },
               "cross_entropy: expected a float32, float64 or bfloat16 tensor, got float16");
}

TEST(CrossEntropy, Errors) {
  Tensor logits = random_tensor({3, 7}, 7);
  expect_error([&] { cross_entropy(logits, from_vector<int64_t>({1, 2, 7}, {3})); },
               "cross_entropy: target 7 of row 2 is out of range for 7 classes (and is not "
               "ignore_index -100)");
  expect_error([&] { cross_entropy(logits, from_vector<int64_t>({1, -1, 0}, {3})); },
               "target -1 of row 1");
  expect_error([&] { cross_entropy(logits, from_vector<int64_t>({1, 2}, {2})); },
               "cross_entropy: expected logits [N, V] and targets [N], got logits [3, 7] and "
               "targets [2]");
  expect_error([&] { cross_entropy(random_tensor({3}, 8), arange(3)); }, "got logits [3]");
  expect_error([&] { cross_entropy(logits, random_tensor({3}, 9)); },
               "cross_entropy: expected int32 or int64 targets, got float64");
}

// Written over the logits, the gradient is the out-of-place one bit for bit (each row's target
// logit is read before the row is written); non-contiguous logits are refused. Trusted targets
// (skipping the check) give the same bits.
TEST(CrossEntropy, BackwardOverTheLogits) {
  Tensor targets = from_vector<int64_t>({3, -100, 0, 36, 5}, {5});
  for (DType dt : {DType::F32, DType::F64, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dt));
    const Tensor logits = random_tensor({5, 37}, 23, dt);
    CrossEntropyOutput out = cross_entropy_forward(logits, targets);
    const Tensor g = full({}, 0.75, out.loss.dtype());
    const Tensor expected = cross_entropy_backward(g, logits, targets, out.lse);
    EXPECT_ALL_CLOSE(cross_entropy_backward(g, logits, targets, out.lse, -100, Reduction::Mean,
                                            IndexBounds::Trusted),
                     expected, 0, 0);
    const Tensor over = logits.clone();
    const Tensor d = cross_entropy_backward_(g, over, targets, out.lse);
    EXPECT_EQ(d.data_ptr(), over.data_ptr());
    EXPECT_ALL_CLOSE(d, expected, 0, 0);
  }
  const Tensor transposed = random_tensor({37, 5}, 24).t();
  CrossEntropyOutput out = cross_entropy_forward(transposed, targets);
  expect_error([&] { cross_entropy_backward_(ones({}), transposed, targets, out.lse); },
               "cross_entropy_backward_: the logits it writes over must be contiguous, got [5, 37] "
               "with strides [1, 5]");
}

}  // namespace
}  // namespace moegrad
