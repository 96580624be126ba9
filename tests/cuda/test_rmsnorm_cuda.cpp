#include <array>
#include <cstring>
#include <functional>
#include <string>

#include "autograd/ops/binary.h"
#include "autograd/ops/reduce.h"
#include "autograd/ops/rmsnorm.h"
#include "core/ops/rmsnorm.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

Device gpu() { return Device::cuda(); }

// The operands x, w, grad built on a device. Views are taken there, since Tensor::to copies into
// a contiguous tensor.
using Operands = std::function<std::array<Tensor, 3>(Device)>;

// Forward (y, rstd) and backward (dx, dw) on the GPU against the CPU, the backward fed the same
// inputs (the CPU's rstd) on both sides.
void expect_parity(const Operands& make, double tol, const std::string& what) {
  const double eps = 1e-5;
  const auto [x, w, grad] = make(Device::cpu());
  const auto [gx, gw, ggrad] = make(gpu());
  RmsNormOutput c = rmsnorm_forward(x, w, eps);
  RmsNormOutput g = rmsnorm_forward(gx, gw, eps);
  EXPECT_ALL_CLOSE(g.y, c.y, tol, tol) << what;
  EXPECT_ALL_CLOSE(g.rstd, c.rstd, tol, tol) << what;
  RmsNormGrads cb = rmsnorm_backward(grad, x, w, c.rstd);
  RmsNormGrads gb = rmsnorm_backward(ggrad, gx, gw, c.rstd.to(gpu()));
  EXPECT_ALL_CLOSE(gb.dx, cb.dx, tol, tol) << what;
  EXPECT_ALL_CLOSE(gb.dw, cb.dw, tol, tol) << what;
}

TEST(RmsNormCuda, MatchesCpuOnOddSizes) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::F32, DType::F64}) {
    const double tol = dt == DType::F32 ? 1e-5 : 1e-12;
    // Warp rows (D < 1024) and block rows; fewer and more rows than dw's 128 chunks.
    for (int64_t D : {1, 7, 129, 4096 + 3}) {
      for (int64_t rows : {1, 5, 1000}) {
        Tensor x = random_tensor({rows, D}, uint64_t(D * 7 + rows), dt);
        Tensor w = random_tensor({D}, uint64_t(D + 1), dt);
        Tensor grad = random_tensor({rows, D}, uint64_t(D * 7 + rows + 3), dt);
        expect_parity([&](Device d) { return std::array{x.to(d), w.to(d), grad.to(d)}; }, tol,
                      std::string(dtype_name(dt)) + " " + shape_str(x.shape()));
      }
    }
  }
}

TEST(RmsNormCuda, MatchesCpuOnNonContiguousAndLeadingDims) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::F32, DType::F64}) {
    const double tol = dt == DType::F32 ? 1e-5 : 1e-12;
    auto rt = [dt](const Shape& s, uint64_t seed) { return random_tensor(s, seed, dt); };
    const Tensor a = rt({33, 40}, 1), b = rt({33}, 2), c = rt({33, 40}, 3);
    expect_parity([&](Device d) { return std::array{a.to(d).t(), b.to(d), c.to(d).t()}; }, tol,
                  "transposed x and grad");
    const Tensor e = rt({6, 140}, 4), f = rt({129, 2}, 5), g = rt({6, 129}, 6);
    expect_parity(
        [&](Device d) {
          return std::array{e.to(d).narrow(1, 3, 129), f.to(d).select(1, 0), g.to(d)};
        },
        tol, "narrow x, weight of stride 2");
    const Tensor h = rt({2, 3, 4, 37}, 7), k = rt({37}, 8), m = rt({2, 4, 3, 37}, 9);
    expect_parity(
        [&](Device d) { return std::array{h.to(d).permute({0, 2, 1, 3}), k.to(d), m.to(d)}; }, tol,
        "permuted 4-d x");
  }
}

// bf16 reads and writes bf16 and computes in f32 (rstd f32) like the CPU's bf16 path: the same
// function, so within bf16's precision; warp and block rows, odd sizes, views.
TEST(RmsNormCuda, Bf16MatchesCpuBf16) {
  SKIP_WITHOUT_GPU();
  auto bf = [](const Shape& s, uint64_t seed) { return random_tensor(s, seed, DType::BF16); };
  for (int64_t D : {7, 129, 4096 + 3}) {
    for (int64_t rows : {5, 1000}) {
      const Tensor x = bf({rows, D}, uint64_t(D * 3 + rows)), w = bf({D}, uint64_t(D + 2));
      const Tensor grad = bf({rows, D}, uint64_t(D * 3 + rows + 1));
      expect_parity([&](Device d) { return std::array{x.to(d), w.to(d), grad.to(d)}; }, 1e-2,
                    "bf16 " + shape_str(x.shape()));
    }
  }
  const Tensor a = bf({33, 40}, 1), b = bf({33}, 2), c = bf({33, 40}, 3);
  expect_parity([&](Device d) { return std::array{a.to(d).t(), b.to(d), c.to(d).t()}; }, 1e-2,
                "bf16 transposed x and grad");
  RmsNormOutput out = rmsnorm_forward(a.to(gpu()), bf({40}, 4).to(gpu()), 1e-5);
  EXPECT_EQ(out.y.dtype(), DType::BF16);
  EXPECT_EQ(out.rstd.dtype(), DType::F32);
}

// Rows that split into 16-byte vectors (8 bf16, 4 f32, 2 f64) take the vector kernels: a warp a
// row up to 1023 vectors, a block a row from 1024 (8192 bf16); and a view that starts
// mid-vector does not.
TEST(RmsNormCuda, VectorRowsMatchCpu) {
  SKIP_WITHOUT_GPU();
  uint64_t seed = 200;
  for (DType dt : {DType::BF16, DType::F32, DType::F64}) {
    const double tol = dt == DType::BF16 ? 1e-2 : dt == DType::F32 ? 1e-5 : 1e-12;
    for (int64_t D : {8, 1024, 8192 + 64}) {
      for (int64_t rows : {3, 300}) {
        const Tensor x = random_tensor({rows, D}, seed++, dt), w = random_tensor({D}, seed++, dt);
        const Tensor grad = random_tensor({rows, D}, seed++, dt);
        expect_parity([&](Device d) { return std::array{x.to(d), w.to(d), grad.to(d)}; }, tol,
                      std::string(dtype_name(dt)) + " " + shape_str(x.shape()));
      }
    }
    const Tensor x = random_tensor({40, 1024}, seed++, dt), w = random_tensor({1025}, seed++, dt);
    const Tensor grad = random_tensor({40, 1024}, seed++, dt);
    expect_parity(
        [&](Device d) { return std::array{x.to(d), w.to(d).narrow(0, 1, 1024), grad.to(d)}; },
        tol, std::string(dtype_name(dt)) + " weight starting mid-vector");
  }
}

TEST(RmsNormCuda, NoRowsGiveAZeroWeightGradient) {
  SKIP_WITHOUT_GPU();
  Tensor x = random_tensor({0, 7}, 1), w = random_tensor({7}, 2);
  RmsNormOutput out = rmsnorm_forward(x.to(gpu()), w.to(gpu()), 1e-5);
  EXPECT_EQ(out.y.shape(), (Shape{0, 7}));
  EXPECT_EQ(out.rstd.shape(), (Shape{0}));
  RmsNormGrads g = rmsnorm_backward(x.to(gpu()), x.to(gpu()), w.to(gpu()), out.rstd);
  EXPECT_ALL_CLOSE(g.dw, zeros({7}, DType::F64), 0, 0);
}

template <typename T>
bool same_bits(const Tensor& a, const Tensor& b) {
  std::vector<T> u = a.to_vector<T>(), v = b.to_vector<T>();
  return u.size() == v.size() && std::memcmp(u.data(), v.data(), u.size() * sizeof(T)) == 0;
}

TEST(RmsNormCuda, BackwardIsBitIdenticalRunToRun) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::F32, DType::F64}) {
    for (int64_t D : {129, 4096 + 3}) {
      Tensor x = random_tensor({1000, D}, 11, dt, gpu());
      Tensor w = random_tensor({D}, 12, dt, gpu());
      Tensor grad = random_tensor({1000, D}, 13, dt, gpu());
      Tensor rstd = rmsnorm_forward(x, w, 1e-5).rstd;
      RmsNormGrads a = rmsnorm_backward(grad, x, w, rstd);
      RmsNormGrads b = rmsnorm_backward(grad, x, w, rstd);
      const bool dw_same = dt == DType::F32 ? same_bits<float>(a.dw, b.dw)
                                            : same_bits<double>(a.dw, b.dw);
      const bool dx_same = dt == DType::F32 ? same_bits<float>(a.dx, b.dx)
                                            : same_bits<double>(a.dx, b.dx);
      EXPECT_TRUE(dw_same) << dtype_name(dt) << " D " << D;
      EXPECT_TRUE(dx_same) << dtype_name(dt) << " D " << D;
    }
  }
}

TEST(RmsNormCuda, GradientsMatchCpu) {
  SKIP_WITHOUT_GPU();
  Tensor x = random_tensor({3, 5, 33}, 21), w = random_tensor({33}, 22);
  Tensor mix = random_tensor({3, 5, 33}, 23);
  Variable cx(x, true), cw(w, true), gx(x.to(gpu()), true), gw(w.to(gpu()), true);
  sum(mul(rmsnorm(cx, cw, 1e-6), Variable(mix))).backward();
  sum(mul(rmsnorm(gx, gw, 1e-6), Variable(mix.to(gpu())))).backward();
  EXPECT_ALL_CLOSE(gx.grad(), cx.grad(), 1e-12, 1e-12);
  EXPECT_ALL_CLOSE(gw.grad(), cw.grad(), 1e-12, 1e-12);
}

}  // namespace
}  // namespace moegrad
