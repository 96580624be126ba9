#include "autograd/ops/cross_entropy.h"
#include "autograd/ops/unary.h"
#include "autograd/ops/views.h"
#include "core/ops/cross_entropy.h"
#include "core/ops/unary.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

TEST(CrossEntropyGrad, MeanWithIgnoredRows) {
  Tensor logits = random_tensor({4, 5}, 1);
  Tensor targets = from_vector<int64_t>({2, -100, 4, 0}, {4});
  EXPECT_GRADCHECK([targets](const auto& v) { return cross_entropy(v[0], targets); }, {logits});
}

TEST(CrossEntropyGrad, SumWithInt32Targets) {
  Tensor logits = random_tensor({3, 6}, 2);
  Tensor targets = from_vector<int32_t>({5, 0, 3}, {3});
  EXPECT_GRADCHECK(
      [targets](const auto& v) { return cross_entropy(v[0], targets, -100, Reduction::Sum); },
      {logits});
}

TEST(CrossEntropyGrad, TransposedLogits) {
  Tensor logits = random_tensor({5, 3}, 3).t();  // [3, 5]
  Tensor targets = from_vector<int64_t>({1, 4, 1}, {3});
  EXPECT_GRADCHECK([targets](const auto& v) { return cross_entropy(v[0], targets, 4); }, {logits});
}

// bf16 logits: the loss is f32, the logits' gradient bf16 and close to the f32 gradient of
// the same (rounded) logits.
TEST(CrossEntropyGradBf16, F32LossBf16Gradient) {
  Tensor logits = random_tensor({5, 37}, 5, DType::BF16);
  Tensor targets = from_vector<int64_t>({36, -100, 0, 17, 2}, {5});
  Variable x(logits, true), x32(logits.to(DType::F32), true);
  Variable loss = cross_entropy(x, targets);
  EXPECT_EQ(loss.dtype(), DType::F32);
  loss.backward();
  cross_entropy(x32, targets).backward();
  EXPECT_EQ(x.grad().dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(x.grad().to(DType::F32), x32.grad(), 1e-2, 1e-2);
}

TEST(CrossEntropyGrad, GradientReachesThroughAView) {
  // [B, T, V] logits flattened to [B*T, V], as a language-model head does.
  Tensor logits = random_tensor({2, 2, 3}, 4);
  Tensor targets = from_vector<int64_t>({0, 2, 1, -100}, {4});
  EXPECT_GRADCHECK(
      [targets](const auto& v) { return cross_entropy(reshape(v[0], {4, 3}), targets); },
      {logits});
}

// Logits that nothing but the node holds take their own gradient in a backward that frees
// the graph; with retain_graph they are kept intact, and both give the same gradient.
TEST(CrossEntropyGrad, LogitsNobodyHoldsTakeTheirGradient) {
  const Tensor targets = from_vector<int64_t>({0, 2, -100, 1}, {4});
  const Tensor w = random_tensor({4, 3}, 5);
  for (bool retain : {false, true}) {
    SCOPED_TRACE(::testing::Message() << "retain_graph " << retain);
    Variable x(w.clone(), true);
    const void* logits_buffer = nullptr;
    const void* gradient_buffer = nullptr;
    Variable loss = [&] {
      Variable logits = mul_scalar(x, 2.0);  // not a leaf: the caller drops it
      logits_buffer = logits.data().data_ptr();
      logits.register_hook([&](const Tensor& g) {
        gradient_buffer = g.data_ptr();
        return Tensor();
      });
      return cross_entropy(logits, targets);
    }();
    loss.backward(Tensor(), retain);
    EXPECT_EQ(gradient_buffer == logits_buffer, !retain);
    const Tensor expected = mul_scalar(
        cross_entropy_backward(ones({}, DType::F64), mul_scalar(w, 2.0), targets,
                               cross_entropy_forward(mul_scalar(w, 2.0), targets).lse),
        2.0);
    EXPECT_ALL_CLOSE(x.grad(), expected, 0, 0);
    if (retain) {
      loss.backward(Tensor(), false);  // the saved logits are still the logits
      EXPECT_ALL_CLOSE(x.grad(), mul_scalar(expected, 2.0), 1e-12, 1e-12);
    }
  }
}

}  // namespace
}  // namespace moegrad
