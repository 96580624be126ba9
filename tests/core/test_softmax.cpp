#include <cmath>
#include <limits>

#include "core/ops/softmax.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

// Calls fn(row) for every 1-d slice of `shape` along `dim`, a slice being the list of the
// linear (row-major) positions of its elements.
template <typename Fn>
void for_each_slice(const Shape& shape, int64_t dim, Fn fn) {
  int64_t inner = 1;
  for (size_t k = dim + 1; k < shape.size(); ++k) inner *= shape[k];
  int64_t n = shape[dim], outer = shape_numel(shape) / (n * inner);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      std::vector<int64_t> pos;
      for (int64_t d = 0; d < n; ++d) pos.push_back((o * n + d) * inner + i);
      fn(pos);
    }
  }
}

// Softmax or log-softmax in f64, straight from the definition.
Tensor naive_softmax(const Tensor& x, int64_t dim, bool log) {
  std::vector<double> v = x.to_vector<double>(), out(v.size());
  for_each_slice(x.shape(), dim, [&](const std::vector<int64_t>& pos) {
    double m = -std::numeric_limits<double>::infinity(), s = 0;
    for (int64_t p : pos) m = std::max(m, v[p]);
    for (int64_t p : pos) s += std::exp(v[p] - m);
    for (int64_t p : pos) out[p] = log ? v[p] - m - std::log(s) : std::exp(v[p] - m) / s;
  });
  return from_vector(out, x.shape());
}

// The backward formulas, from the output y, in f64.
Tensor naive_backward(const Tensor& g, const Tensor& y, int64_t dim, bool log) {
  std::vector<double> gv = g.to_vector<double>(), yv = y.to_vector<double>(), out(gv.size());
  for_each_slice(y.shape(), dim, [&](const std::vector<int64_t>& pos) {
    double s = 0;
    for (int64_t p : pos) s += log ? gv[p] : gv[p] * yv[p];
    for (int64_t p : pos) out[p] = log ? gv[p] - std::exp(yv[p]) * s : yv[p] * (gv[p] - s);
  });
  return from_vector(out, y.shape());
}

TEST(Softmax, MatchesNaiveAlongEveryDimAndLayout) {
  for (DType dt : {DType::F32, DType::F64}) {
    double tol = dt == DType::F32 ? 1e-6 : 1e-13;
    std::vector<Tensor> inputs = {random_tensor({3, 4, 70}, 1, dt),
                                  random_tensor({70, 4, 3}, 2, dt).permute({2, 1, 0}),
                                  random_tensor({3, 4, 75}, 3, dt).narrow(2, 5, 70)};
    for (const Tensor& x : inputs) {
      for (int64_t dim : {0, 1, 2, -1}) {
        int64_t d = dim < 0 ? dim + 3 : dim;
        for (bool log : {false, true}) {
          Tensor y = log ? log_softmax(x, dim) : softmax(x, dim);
          EXPECT_EQ(y.dtype(), dt);
          EXPECT_ALL_CLOSE(y, naive_softmax(x, d, log), tol, tol)
              << "dim " << dim << " log " << log;
        }
      }
    }
  }
}

TEST(Softmax, RowsSumToOneAndLargeInputsStayFinite) {
  Tensor x = from_vector<float>({1000, 1001, 1002, -1000, -1001, -1002}, {2, 3});
  Tensor y = softmax(x, 1);
  std::vector<float> v = y.to_vector<float>();
  for (float e : v) EXPECT_TRUE(std::isfinite(e));
  EXPECT_NEAR(v[0] + v[1] + v[2], 1.0f, 1e-6);
  EXPECT_NEAR(v[2], 1.0 / (1.0 + std::exp(-1.0) + std::exp(-2.0)), 1e-6);
  std::vector<float> l = log_softmax(x, 1).to_vector<float>();
  EXPECT_NEAR(l[3], -std::log(1.0 + std::exp(-1.0) + std::exp(-2.0)), 1e-5);
  // A 0-d tensor is its own single-element row.
  EXPECT_EQ(softmax(scalar_tensor(3.0), 0).item(), 1.0);
}

TEST(Softmax, BackwardKernelsMatchTheirFormulas) {
  for (DType dt : {DType::F32, DType::F64}) {
    double tol = dt == DType::F32 ? 1e-5 : 1e-12;
    Tensor x = random_tensor({3, 5, 40}, 4, dt);
    Tensor g = random_tensor({40, 5, 3}, 5, dt).permute({2, 1, 0});  // non-contiguous grad
    for (int64_t dim : {0, 1, 2}) {
      Tensor y = softmax(x, dim);
      EXPECT_ALL_CLOSE(softmax_backward(g, y, dim), naive_backward(g, y, dim, false), tol, tol);
      Tensor ly = log_softmax(x, dim);
      EXPECT_ALL_CLOSE(log_softmax_backward(g, ly, dim), naive_backward(g, ly, dim, true), tol,
                       tol);
    }
  }
}

// bf16: f32 arithmetic on the bf16 values, each output rounded once; the reference is the f32
// op on the same values. Rows (last dim, odd length) and columns (dim 0), a permuted input.
TEST(SoftmaxBf16, ForwardAndBackwardMatchF32) {
  Tensor x = random_tensor({37, 5, 3}, 30, DType::BF16).permute({2, 1, 0});  // [3, 5, 37]
  Tensor g = random_tensor({3, 5, 37}, 31, DType::BF16);
  for (int64_t dim : {2, 0}) {
    SCOPED_TRACE(::testing::Message() << "dim " << dim);
    Tensor x32 = x.to(DType::F32), g32 = g.to(DType::F32);
    Tensor y = softmax(x, dim), ly = log_softmax(x, dim);
    EXPECT_EQ(y.dtype(), DType::BF16);
    EXPECT_EQ(ly.dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(y.to(DType::F32), softmax(x32, dim), 1e-2, 1e-2);
    EXPECT_ALL_CLOSE(ly.to(DType::F32), log_softmax(x32, dim), 1e-2, 1e-2);
    // The backward of the bf16 output against the f32 backward of the same (rounded) output.
    Tensor gx = softmax_backward(g, y, dim), lgx = log_softmax_backward(g, ly, dim);
    EXPECT_EQ(gx.dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(gx.to(DType::F32), softmax_backward(g32, y.to(DType::F32), dim), 1e-2, 1e-2);
    EXPECT_ALL_CLOSE(lgx.to(DType::F32), log_softmax_backward(g32, ly.to(DType::F32), dim), 1e-2,
                     1e-2);
  }
  // Mixed dtypes stay an error.
  EXPECT_THROW(softmax_backward(g.to(DType::F32), softmax(x, 2), 2), Error);
}

TEST(Softmax, ErrorsNameTheOpAndShapes) {
  Tensor x = zeros({2, 3});
  EXPECT_THROW(softmax(x, 2), Error);
  EXPECT_THROW(log_softmax(zeros({2}, DType::I32), 0), Error);
  try {
    softmax_backward(zeros({2, 4}), x, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("softmax_backward: grad shape [2, 4]"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(softmax(zeros({2, 0}), 1).shape(), (Shape{2, 0}));
}

}  // namespace
}  // namespace moegrad
