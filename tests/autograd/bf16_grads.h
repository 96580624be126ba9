// The bf16 backward check: the gradients of a graph built on bf16 Variables against those of
// the same graph on f32 Variables holding the same (bf16-rounded) values.
#pragma once
#include <functional>
#include <vector>

#include "tests/testing.h"

namespace moegrad::testing {

// d(sum(fn(inputs) * w))/d(input) for each input, with the inputs and the fixed random weight
// w (made in bf16, so both dtypes see the same values) converted to `dtype`.
inline std::vector<Tensor> grads_in(const std::function<Variable(const std::vector<Variable>&)>& fn,
                                    const std::vector<Tensor>& inputs, DType dtype) {
  std::vector<Variable> vs;
  for (const Tensor& t : inputs) vs.emplace_back(t.to(dtype), true);
  Variable y = fn(vs);
  y.backward(random_tensor(y.shape(), 99, DType::BF16).to(dtype));
  std::vector<Tensor> grads;
  for (const Variable& v : vs) grads.push_back(v.grad());
  return grads;
}

// Every gradient of the bf16 graph is bf16 and within 1e-2 of the f32 graph's.
inline void expect_bf16_grads_close(
    const std::function<Variable(const std::vector<Variable>&)>& fn,
    const std::vector<Tensor>& inputs) {
  std::vector<Tensor> low = grads_in(fn, inputs, DType::BF16);
  std::vector<Tensor> ref = grads_in(fn, inputs, DType::F32);
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_TRUE(low[i].defined()) << "input " << i;
    EXPECT_EQ(low[i].dtype(), DType::BF16) << "input " << i;
    EXPECT_ALL_CLOSE(low[i].to(DType::F32), ref[i], 1e-2, 1e-2) << "input " << i;
  }
}

}  // namespace moegrad::testing
