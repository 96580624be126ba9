#include "tests/testing.h"

#include <cmath>
#include <sstream>

namespace moegrad::testing {

Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype, Device device) {
  Generator gen(seed);
  return randn(shape, gen, dtype, device);
}

Tensor skewed_index(const Shape& shape, int64_t high, uint64_t seed, DType dtype) {
  Generator gen(seed);
  std::vector<int64_t> v = randint(0, high, shape, gen, DType::I64).to_vector<int64_t>();
  for (int64_t& x : v) x = x * x / high;
  return from_vector(v, shape).to(dtype);
}

Tensor group_starts(const std::vector<int64_t>& rows) {
  std::vector<int64_t> start(rows.size() + 1, 0);
  for (size_t g = 0; g < rows.size(); ++g) start[g + 1] = start[g] + rows[g];
  return from_vector(start, {int64_t(start.size())});
}

Tensor gpu(const Tensor& t) { return t.to(Device::cuda()); }

Tensor same_view(const Tensor& v, const Tensor& base_gpu) {
  return base_gpu.as_strided(v.shape(), v.strides(), v.offset());
}

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double atol,
                                     double rtol) {
  if (actual.shape() != expected.shape()) {
    return ::testing::AssertionFailure() << "shape " << shape_str(actual.shape())
                                         << " != expected " << shape_str(expected.shape());
  }
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    bool both_nan = std::isnan(a[i]) && std::isnan(e[i]);
    if (both_nan || a[i] == e[i]) continue;
    if (!(std::fabs(a[i] - e[i]) <= atol + rtol * std::fabs(e[i]))) {
      return ::testing::AssertionFailure()
             << "element " << i << " of " << shape_str(actual.shape()) << ": " << a[i]
             << " != expected " << e[i] << " (atol " << atol << ", rtol " << rtol << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult grad_ok(const std::function<Variable(const std::vector<Variable>&)>& fn,
                                   const std::vector<Tensor>& inputs, GradcheckOptions opts) {
  GradcheckResult r = gradcheck(fn, inputs, opts);
  if (r.ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "gradcheck failed: " << r.message;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

void expect_error(const std::function<void()>& f, const std::string& needle) {
  std::string message = error_of(f);
  EXPECT_NE(message.find(needle), std::string::npos)
      << "expected an error containing '" << needle << "', got: " << message;
}

}  // namespace moegrad::testing
