#include <cmath>
#include <utility>

#include "autograd/ops/reduce.h"
#include "core/ops/reduce.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

struct Case {
  Tensor x;
  std::vector<int64_t> dims;
};

// One input per kernel path: warp rows, block rows, rows split over blocks, columns, split
// columns, short rows, strided rows, rows with inner > 1, the copy fallback, odd sizes.
std::vector<Case> cases(DType dt) {
  auto rt = [dt](const Shape& s, uint64_t seed) { return testing::random_tensor(s, seed, dt); };
  return {
      {rt({37, 45}, 1), {1}},
      {rt({5, 3001}, 2), {1}},
      {rt({2, 100003}, 3), {1}},
      {rt({1000003}, 4), {}},
      {rt({37, 45}, 5), {0}},
      {rt({20001, 3}, 6), {0}},
      {rt({300, 7}, 7), {1}},
      {rt({45, 37}, 8).t(), {1}},
      {rt({4, 50, 6}, 9), {1}},
      {rt({4, 6, 50}, 10).transpose(1, 2), {1}},
      {rt({4, 5, 6}, 11), {0, 2}},
      {rt({6, 70}, 12).narrow(1, 3, 61), {-1}},
      {rt({5, 1}, 13).expand({5, 40}), {0}},
  };
}

// bf16 is compared with the CPU's bf16 within 1e-2: the GPU folds its f64 partial sums in
// another order than the CPU, so a bf16 result may round the other way at a tie. Max and argmax
// are exact in every dtype, first occurrence on ties (frequent among bf16 values).
TEST(ReduceCuda, MatchesCpuOnEveryPath) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::F32, DType::F64, DType::BF16}) {
    double tol = dt == DType::F32 ? 1e-5 : dt == DType::BF16 ? 1e-2 : 1e-12;
    for (const Case& c : cases(dt)) {
      Tensor g = c.x.to(Device::cuda());
      for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Amax, ReduceOp::LogSumExp}) {
        Tensor gpu = reduce(op, g, c.dims, true);
        EXPECT_TRUE(gpu.device().is_cuda());
        EXPECT_EQ(gpu.dtype(), dt);
        EXPECT_ALL_CLOSE(gpu, reduce(op, c.x, c.dims, true), tol, tol)
            << "op " << int(op) << " shape " << shape_str(c.x.shape()) << " dims "
            << shape_str(c.dims);
      }
      if (c.dims.size() == 1) {
        auto [cv, ci] = max(c.x, c.dims[0]);
        auto [gv, gi] = max(g, c.dims[0]);
        EXPECT_ALL_CLOSE(gv, cv, 0, 0);
        EXPECT_EQ(gi.to_vector<int64_t>(), ci.to_vector<int64_t>()) << shape_str(c.x.shape());
      }
    }
  }
  Tensor e = zeros({3, 0}, DType::BF16, Device::cuda());
  EXPECT_EQ(sum(e, {1}).to_vector<float>(), (std::vector<float>{0, 0, 0}));
}

TEST(ReduceCuda, TiesNanAndEmptyMatchCpu) {
  SKIP_WITHOUT_GPU();
  Tensor x = zeros({3, 40000});
  x.select(1, 39000).fill_(2.0);
  x.select(1, 20000).fill_(2.0);
  x.select(0, 2).select(0, 30000).fill_(NAN);
  EXPECT_EQ(argmax(x.to(Device::cuda()), 1).to_vector<int64_t>(),
            argmax(x, 1).to_vector<int64_t>());
  EXPECT_ALL_CLOSE(amax(x.to(Device::cuda()), {1}), amax(x, {1}), 0, 0);
  Tensor e = zeros({3, 0}, DType::F32, Device::cuda());
  EXPECT_EQ(sum(e, {1}).to_vector<float>(), (std::vector<float>{0, 0, 0}));
  EXPECT_THROW(amax(e, {1}), Error);
}

TEST(ReduceCuda, RepeatedRunsAreBitIdentical) {
  SKIP_WITHOUT_GPU();
  Tensor x = testing::random_tensor({3, 500001}, 14, DType::F32, Device::cuda());
  EXPECT_EQ(sum(x, {1}).to_vector<float>(), sum(x, {1}).to_vector<float>());
  EXPECT_EQ(logsumexp(x).to_vector<float>(), logsumexp(x).to_vector<float>());
}

TEST(ReduceCuda, GradientsMatchCpu) {
  SKIP_WITHOUT_GPU();
  std::vector<std::function<Variable(const Variable&)>> fns = {
      [](const Variable& v) { return sum(mean(v, {0}, true)); },
      [](const Variable& v) { return sum(amax(v, {1})); },
      [](const Variable& v) { return sum(max(v, 0).first); },
      [](const Variable& v) { return sum(logsumexp(v, {-1})); },
  };
  for (const auto& [dtype, tol] : {std::pair{DType::F64, 1e-12}, std::pair{DType::BF16, 1e-2}}) {
    Tensor x = testing::random_tensor({6, 9}, 15, dtype).t();
    for (const auto& fn : fns) {
      Variable c(x, true), g(x.to(Device::cuda()), true);
      fn(c).backward();
      fn(g).backward();
      EXPECT_EQ(g.grad().dtype(), dtype);
      EXPECT_ALL_CLOSE(g.grad(), c.grad(), tol, tol);
    }
  }
}

}  // namespace
}  // namespace moegrad
