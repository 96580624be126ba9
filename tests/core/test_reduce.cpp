#include <omp.h>

#include <cmath>
#include <limits>

#include "core/ops/reduce.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

enum class Ref { Sum, Mean, Amax, LogSumExp };

// The reduction computed naively in f64: each element of x (in logical order) is appended
// to the list of its output, then each list is reduced; the result has the keepdim shape.
Tensor naive(Ref op, const Tensor& x, std::vector<int64_t> dims) {
  std::vector<bool> reduced(x.dim(), dims.empty());
  for (int64_t d : dims) reduced[normalize_dim(d, x.dim(), "naive")] = true;
  Shape kept = x.shape();
  for (int64_t d = 0; d < x.dim(); ++d)
    if (reduced[d]) kept[d] = 1;
  std::vector<std::vector<double>> lists(shape_numel(kept));
  std::vector<double> v = x.to_vector<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t rem = i, out = 0, scale = 1;
    for (int64_t d = x.dim() - 1; d >= 0; --d) {
      int64_t idx = rem % x.size(d);
      rem /= x.size(d);
      if (!reduced[d]) out += idx * scale;
      scale *= kept[d];
    }
    lists[out].push_back(v[i]);
  }
  std::vector<double> res;
  for (const auto& l : lists) {
    double r = 0, m = -std::numeric_limits<double>::infinity();
    for (double e : l) m = std::max(m, e);
    for (double e : l) r += op == Ref::LogSumExp ? std::exp(e - m) : e;
    if (op == Ref::Mean) r /= double(l.size());
    if (op == Ref::Amax) r = m;
    if (op == Ref::LogSumExp) r = m + std::log(r);
    res.push_back(r);
  }
  return from_vector(res, kept);
}

Tensor run(Ref op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  switch (op) {
    case Ref::Sum:
      return sum(x, dims, keepdim);
    case Ref::Mean:
      return mean(x, dims, keepdim);
    case Ref::Amax:
      return amax(x, dims, keepdim);
    case Ref::LogSumExp:
      return logsumexp(x, dims, keepdim);
  }
  return Tensor();
}

// Inputs with the same logical shape [4, 5, 6] and different layouts.
std::vector<Tensor> layouts(DType dt) {
  return {
      random_tensor({4, 5, 6}, 1, dt),
      random_tensor({6, 5, 4}, 2, dt).permute({2, 1, 0}),           // fully reversed strides
      random_tensor({4, 6, 5}, 3, dt).transpose(1, 2),              // inner dims swapped
      random_tensor({4, 5, 9}, 4, dt).narrow(2, 2, 6),              // row gaps
      random_tensor({5, 6}, 5, dt).unsqueeze(0).expand({4, 5, 6}),  // stride 0
  };
}

TEST(Reduce, MatchesNaiveForEveryLayoutDimSetAndKeepdim) {
  std::vector<std::vector<int64_t>> dim_sets = {{},     {0},    {1},    {2},    {-1},
                                                {0, 1}, {1, 2}, {0, 2}, {2, 0}, {0, 1, 2}};
  for (DType dt : {DType::F32, DType::F64}) {
    double rtol = dt == DType::F32 ? 2e-6 : 1e-12;
    for (const Tensor& x : layouts(dt)) {
      for (const auto& dims : dim_sets) {
        for (Ref op : {Ref::Sum, Ref::Mean, Ref::Amax, Ref::LogSumExp}) {
          Tensor expect = naive(op, x, dims);
          Tensor kd = run(op, x, dims, true);
          EXPECT_EQ(kd.dtype(), dt);
          EXPECT_ALL_CLOSE(kd, expect, 1e-6, rtol)
              << "op " << int(op) << " dims " << shape_str(dims);
          Tensor nk = run(op, x, dims, false);
          EXPECT_EQ(nk.dim(), dims.empty() ? 0 : x.dim() - int64_t(dims.size()));
          EXPECT_ALL_CLOSE(nk.reshape(expect.shape()), expect, 1e-6, rtol);
        }
      }
    }
  }
}

// bf16 reads its elements as f32 and accumulates as f32 does (sums in f64), rounding once: sum,
// mean and amax give the f32 result rounded to bf16, bit for bit; logsumexp (whose f32 rows
// take a vectorised two-pass path) is within bf16's rounding of it.
TEST(Reduce, Bf16IsTheF32ReductionRoundedOnce) {
  std::vector<std::vector<int64_t>> dim_sets = {{}, {0}, {2}, {0, 1}, {2, 0}};
  for (const Tensor& x : layouts(DType::BF16)) {
    Tensor xf = x.to(DType::F32);
    for (const auto& dims : dim_sets) {
      for (Ref op : {Ref::Sum, Ref::Mean, Ref::Amax, Ref::LogSumExp}) {
        SCOPED_TRACE(::testing::Message() << "op " << int(op) << " dims " << shape_str(dims));
        Tensor got = run(op, x, dims, true);
        Tensor want = run(op, xf, dims, true);
        EXPECT_EQ(got.dtype(), DType::BF16);
        EXPECT_ALL_CLOSE(got.to(DType::F32), want, 1e-2, 1e-2);
        if (op != Ref::LogSumExp) {
          EXPECT_ALL_CLOSE(got, want.to(DType::BF16), 0, 0);
        }
      }
    }
    for (int64_t d = 0; d < 3; ++d) {
      auto [v, i] = max(x, d);
      auto [vf, i_f] = max(xf, d);
      EXPECT_EQ(v.dtype(), DType::BF16);
      EXPECT_ALL_CLOSE(v, vf, 0, 0);
      EXPECT_EQ(i.to_vector<int64_t>(), i_f.to_vector<int64_t>());
    }
  }
  // A long row (cut into blocks) and an odd-sized transposed one.
  Tensor x = random_tensor({3, 40001}, 7, DType::BF16);
  EXPECT_ALL_CLOSE(sum(x, {1}), sum(x.to(DType::F32), {1}).to(DType::BF16), 0, 0);
  EXPECT_ALL_CLOSE(mean(x.t(), {0}), mean(x.to(DType::F32).t(), {0}).to(DType::BF16), 0, 0);
  Tensor empty_rows = zeros({3, 0}, DType::BF16);
  EXPECT_EQ(sum(empty_rows, {1}).to_vector<float>(), (std::vector<float>{0, 0, 0}));
  EXPECT_TRUE(std::isnan(mean(empty_rows, {1}).to_vector<float>()[0]));
  EXPECT_EQ(sum(empty_rows, {1}).dtype(), DType::BF16);
}

TEST(Reduce, HandComputedValues) {
  Tensor x = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(sum(x, {0}).to_vector<float>(), (std::vector<float>{5, 7, 9}));
  EXPECT_EQ(sum(x, {1}).to_vector<float>(), (std::vector<float>{6, 15}));
  EXPECT_EQ(sum(x).item(), 21.0);
  EXPECT_EQ(sum(x).dim(), 0);
  EXPECT_EQ(mean(x, {-1}, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(mean(x, {-1}, true).to_vector<float>(), (std::vector<float>{2, 5}));
  EXPECT_EQ(amax(x, {0}).to_vector<float>(), (std::vector<float>{4, 5, 6}));
  Tensor l = from_vector<double>({0.0, std::log(3.0)}, {2});
  EXPECT_NEAR(logsumexp(l, {0}).item(), std::log(4.0), 1e-15);
}

TEST(Reduce, LongRowsAndFewRowsAreAccurate) {
  // Long enough to be cut into blocks and spread over threads.
  Tensor x = random_tensor({3, 100003}, 7, DType::F32);
  for (Ref op : {Ref::Sum, Ref::Mean, Ref::Amax, Ref::LogSumExp}) {
    EXPECT_ALL_CLOSE(run(op, x, {1}, false).reshape({3, 1}), naive(op, x, {1}), 1e-5, 1e-6);
    EXPECT_ALL_CLOSE(run(op, x.t(), {0}, false).reshape({1, 3}).t(), naive(op, x, {1}), 1e-5, 1e-6);
  }
  // 1e8 + many ones: an f32 accumulator would lose the ones.
  Tensor big = full({200000}, 1.0, DType::F32);
  big.narrow(0, 0, 1).fill_(1e8);
  EXPECT_EQ(sum(big).item(), double(float(1e8 + 199999.0)));
}

TEST(Reduce, ResultsDoNotDependOnThreadCount) {
  Tensor x = random_tensor({5, 70001}, 8, DType::F32);
  Tensor y = random_tensor({301, 257}, 9, DType::F32);
  auto all = [&] {
    return std::vector<Tensor>{sum(x),
                               sum(x, {1}),
                               logsumexp(x, {1}),
                               sum(x, {0}),
                               mean(y, {0}),
                               sum(y.t(), {1}),
                               max(x, 1).second.to(DType::F32)};
  };
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  std::vector<Tensor> one = all();
  omp_set_num_threads(std::max(saved, 2));
  std::vector<Tensor> many = all();
  omp_set_num_threads(saved);
  for (size_t k = 0; k < one.size(); ++k)
    EXPECT_EQ(one[k].to_vector<float>(), many[k].to_vector<float>()) << "result " << k;
}

TEST(Reduce, MaxAndArgmaxTakeTheFirstMaximum) {
  Tensor x = from_vector<float>({1, 7, 7, 2, 1, 3, 5, 0}, {2, 4});
  auto [v, i] = max(x, 1);
  EXPECT_EQ(v.to_vector<float>(), (std::vector<float>{7, 5}));
  EXPECT_EQ(i.dtype(), DType::I64);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(argmax(x, 0, true).shape(), (Shape{1, 4}));
  EXPECT_EQ(argmax(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(argmax(x.t(), -1).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 0}));
  // Ties across block boundaries of a long row still give the first index.
  Tensor flat = zeros({3, 40000});
  flat.select(1, 39000).fill_(2.0);
  flat.select(1, 20000).fill_(2.0);
  EXPECT_EQ(argmax(flat, 1).to_vector<int64_t>(), (std::vector<int64_t>{20000, 20000, 20000}));
}

TEST(Reduce, MaxMatchesNaiveOnStridedInputs) {
  for (const Tensor& x : layouts(DType::F64)) {
    for (int64_t d = 0; d < 3; ++d) {
      auto [v, idx] = max(x, d, true);
      EXPECT_ALL_CLOSE(v, naive(Ref::Amax, x, {d}), 0, 0);
      std::vector<double> xv = x.contiguous().to_vector<double>();
      std::vector<int64_t> iv = idx.to_vector<int64_t>();
      std::vector<double> vv = v.to_vector<double>();
      // Each index points at its maximum, and no earlier element reaches it.
      for (size_t k = 0; k < iv.size(); ++k) {
        ASSERT_GE(iv[k], 0);
        ASSERT_LT(iv[k], x.size(d));
      }
      Shape kept = v.shape();
      for (int64_t o = 0; o < v.numel(); ++o) {
        Shape at(3);
        int64_t rem = o;
        for (int64_t e = 2; e >= 0; --e) {
          at[e] = rem % kept[e];
          rem /= kept[e];
        }
        for (int64_t r = 0; r <= iv[o]; ++r) {
          at[d] = r;
          double e = xv[(at[0] * x.size(1) + at[1]) * x.size(2) + at[2]];
          if (r < iv[o])
            EXPECT_LT(e, vv[o]);
          else
            EXPECT_EQ(e, vv[o]);
        }
      }
    }
  }
}

TEST(Reduce, NanPropagatesThroughAmaxMaxAndLogsumexp) {
  Tensor x = from_vector<float>({1, NAN, 3, 4, 5, 6}, {2, 3});
  std::vector<float> a = amax(x, {1}).to_vector<float>();
  EXPECT_TRUE(std::isnan(a[0]));
  EXPECT_EQ(a[1], 6.0f);
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(std::isnan(logsumexp(x, {1}).to_vector<float>()[0]));
}

TEST(Reduce, LogsumexpIsStableAtExtremes) {
  const double inf = std::numeric_limits<double>::infinity();
  Tensor x = from_vector<double>({1000, 1000, -1000, -1000, -inf, -inf, inf, 1}, {4, 2});
  std::vector<double> l = logsumexp(x, {1}).to_vector<double>();
  EXPECT_NEAR(l[0], 1000 + std::log(2.0), 1e-12);
  EXPECT_NEAR(l[1], -1000 + std::log(2.0), 1e-12);
  EXPECT_EQ(l[2], -inf);
  EXPECT_EQ(l[3], inf);
}

TEST(Reduce, EmptyDims) {
  Tensor x = zeros({3, 0});
  EXPECT_EQ(sum(x, {1}).to_vector<float>(), (std::vector<float>{0, 0, 0}));
  EXPECT_TRUE(std::isnan(mean(x, {1}).to_vector<float>()[0]));
  EXPECT_EQ(logsumexp(x, {1}).to_vector<float>()[0], -INFINITY);
  EXPECT_EQ(sum(x, {0}).shape(), (Shape{0}));
  EXPECT_EQ(sum(x).item(), 0.0);
  try {
    amax(x, {1});
    FAIL() << "amax over an empty dim must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("amax"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[3, 0]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(max(x, 1), Error);
  EXPECT_THROW(argmax(x, -1), Error);
  EXPECT_EQ(amax(x, {0}).shape(), (Shape{0}));  // reduces a non-empty dim: fine
}

TEST(Reduce, ErrorsNameTheOpAndShape) {
  Tensor x = zeros({2, 3});
  try {
    sum(x, {1, -1});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sum: dim -1 repeated"), std::string::npos) << e.what();
  }
  EXPECT_THROW(mean(x, {2}), Error);
  try {
    logsumexp(zeros({2}, DType::I64));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("logsumexp: expected a float32, float64 or bfloat16"),
              std::string::npos)
        << e.what();
  }
}

TEST(Reduce, SumToUndoesBroadcasting) {
  Tensor g = random_tensor({2, 3, 4}, 10);
  EXPECT_ALL_CLOSE(sum_to(g, {3, 1}), sum(sum(g, {0}), {1}, true), 1e-12, 1e-12);
  EXPECT_ALL_CLOSE(sum_to(g, {4}), sum(g, {0, 1}), 1e-12, 1e-12);
  EXPECT_TRUE(sum_to(g, {2, 3, 4}).shares_storage(g));
  EXPECT_THROW(sum_to(g, {5}), Error);
}

}  // namespace
}  // namespace moegrad
