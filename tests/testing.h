// Helpers shared by the test programs: random inputs, tensor comparison, gradient checks and
// the GPU skip.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/variable.h"
#include "core/random.h"
#include "core/tensor.h"

namespace moegrad::testing {

// Standard-normal values, the same for the same seed.
Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype = DType::F64,
                     Device device = Device::cpu());

// Integers in [0, high) skewed as routing at initialisation is: v = r * r / high for uniform r,
// so most fall in the low values and many high ones never occur.
Tensor skewed_index(const Shape& shape, int64_t high, uint64_t seed, DType dtype = DType::I64);

// The starts [G + 1] (int64) of consecutive row groups of these sizes: 0, then running sums.
Tensor group_starts(const std::vector<int64_t>& rows);

// Fails (without aborting) at the first element where |a - e| > atol + rtol |e|, naming it.
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected,
                                     double atol = 1e-6, double rtol = 1e-5);

::testing::AssertionResult grad_ok(const std::function<Variable(const std::vector<Variable>&)>& fn,
                                   const std::vector<Tensor>& inputs, GradcheckOptions opts = {});

// t copied to the first CUDA device.
Tensor gpu(const Tensor& t);
// The view of base_gpu with the shape, strides and offset that `v` has in the CPU tensor whose
// copy base_gpu is (gpu() makes contiguous copies, so a view must be rebuilt on the device).
Tensor same_view(const Tensor& v, const Tensor& base_gpu);

// The message of the moegrad::Error that f throws, or "no error".
std::string error_of(const std::function<void()>& f);
// Fails unless f throws a moegrad::Error whose message contains `needle`.
void expect_error(const std::function<void()>& f, const std::string& needle);

}  // namespace moegrad::testing

#define EXPECT_ALL_CLOSE(actual, expected, ...) \
  EXPECT_TRUE(::moegrad::testing::all_close(actual, expected, ##__VA_ARGS__))
#define EXPECT_GRADCHECK(fn, inputs, ...) \
  EXPECT_TRUE(::moegrad::testing::grad_ok(fn, inputs, ##__VA_ARGS__))
// CUDA tests skip, visibly, on machines without a GPU (and in builds without CUDA).
#define SKIP_WITHOUT_GPU()                                                        \
  do {                                                                            \
    if (!::moegrad::cuda_available()) GTEST_SKIP() << "no CUDA device available"; \
  } while (0)
