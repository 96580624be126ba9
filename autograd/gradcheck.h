// Compares the analytic gradients of a function with central finite differences in f64.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace moegrad {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;
  double rtol = 1e-4;
  uint64_t seed = 0;   // for the random projection of the output
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string message;  // the worst mismatch, naming the input and element, when !ok
};

// `fn` maps variables (made from `inputs`, each requiring grad unless its dtype is integral)
// to one output. Its output y is reduced to L = sum(y * R) with a fixed random R, so every
// output element's gradient is checked at once; dL/dx_i is compared with
// (L(x_i + eps) - L(x_i - eps)) / 2eps for every element of every float input. Inputs are
// used as given: pass f64 tensors, non-contiguous views included.
GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opts = {});

}  // namespace moegrad
