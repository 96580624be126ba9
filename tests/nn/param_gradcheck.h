// Finite-difference check of the gradients a Module's parameters receive (gradcheck proper
// only sees the function's inputs), and the small helpers around it. Shared by test_nn and
// test_moe.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/init.h"
#include "nn/module.h"
#include "tests/testing.h"

namespace moegrad::testing {

// f64 weights with a spread wide enough that finite differences see real curvature.
inline InitOptions f64_init(Generator& gen) {
  InitOptions init;
  init.gen = &gen;
  init.std = 0.5;
  init.dtype = DType::F64;
  return init;
}

// sum(y * R) with a fixed random R: every output element's gradient in one scalar.
inline Variable project(const Variable& y, uint64_t seed) {
  return sum(y * Variable(random_tensor(y.shape(), seed)));
}

// `loss` must return a one-element f64 Variable built from the module's parameters.
inline ::testing::AssertionResult param_grads_ok(const Module& m,
                                                 const std::function<Variable()>& loss,
                                                 const std::vector<std::string>& names,
                                                 double eps = 1e-6, double atol = 1e-6,
                                                 double rtol = 1e-4) {
  m.zero_grad();
  loss().backward();
  for (const std::string& name : names) {
    Variable p = m.parameter(name);
    if (!p.grad().defined()) return ::testing::AssertionFailure() << name << " got no gradient";
    Tensor data = p.data();
    Tensor flat = data.view({-1});
    std::vector<double> grad = p.grad().contiguous().to_vector<double>();
    NoGradGuard no_grad;
    for (int64_t i = 0; i < flat.numel(); ++i) {
      Tensor cell = flat.narrow(0, i, 1);
      const double x0 = cell.item();
      cell.fill_(x0 + eps);
      const double up = loss().data().item();
      cell.fill_(x0 - eps);
      const double down = loss().data().item();
      cell.fill_(x0);
      const double fd = (up - down) / (2 * eps), an = grad[size_t(i)];
      if (!(std::abs(fd - an) <= atol + rtol * std::abs(fd)))
        return ::testing::AssertionFailure()
               << name << "[" << i << "]: analytic " << an << " vs finite difference " << fd;
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace moegrad::testing
