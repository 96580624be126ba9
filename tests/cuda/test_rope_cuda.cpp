#include <functional>
#include <string>

#include "autograd/ops/binary.h"
#include "autograd/ops/reduce.h"
#include "autograd/ops/rope.h"
#include "core/ops/rope.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

Device gpu() { return Device::cuda(); }

// rope and its inverse on the GPU against the CPU, on x built by `make` on each device (views are
// taken there, since Tensor::to copies into a contiguous tensor). Both backends use the same
// host-made tables and the same products, so f32 agrees far inside 1e-5.
void expect_parity(const std::function<Tensor(Device)>& make, const Tensor& positions, double tol,
                   const std::string& what) {
  const double theta = 10000.0;
  const Tensor x = make(Device::cpu()), gx = make(gpu());
  EXPECT_ALL_CLOSE(rope(gx, theta, positions), rope(x, theta, positions), tol, tol) << what;
  EXPECT_ALL_CLOSE(rope_backward(gx, theta, positions), rope_backward(x, theta, positions), tol,
                   tol)
      << what << " (backward)";
}

TEST(RopeCuda, MatchesCpuOnOddSizes) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::F32, DType::F64}) {
    const double tol = dt == DType::F32 ? 1e-6 : 1e-12;
    // D even by definition: odd half-widths 1, 7, 129, 2051 (one pair a thread), and 32 and 64
    // (16-byte vectors of pairs).
    for (int64_t D : {2, 14, 258, 4102, 64, 128}) {
      for (int64_t T : {1, 5, 1000}) {
        const int64_t heads = T == 1000 ? 1 : 3;
        const Tensor x = random_tensor({T == 1000 ? 1 : 2, heads, T, D}, uint64_t(D * 5 + T), dt);
        expect_parity([&](Device d) { return x.to(d); }, Tensor(), tol,
                      std::string(dtype_name(dt)) + " " + shape_str(x.shape()));
      }
    }
  }
}

// bf16 rotates in f32 by the f32 tables on both backends: within bf16's precision of the CPU's
// bf16 result; odd half-widths and sequence lengths, the attention layout's transposed view.
TEST(RopeCuda, Bf16MatchesCpuBf16) {
  SKIP_WITHOUT_GPU();
  for (int64_t D : {2, 14, 258, 64, 128}) {
    const Tensor x = random_tensor({2, 7, 3, D}, uint64_t(D + 40), DType::BF16);
    expect_parity([&](Device d) { return x.to(d).transpose(1, 2); }, Tensor(), 1e-2,
                  "bf16 " + shape_str(x.shape()) + " transposed");
    expect_parity([&](Device d) { return x.to(d); }, from_vector<int64_t>({5, 0, 4095}, {3}), 1e-2,
                  "bf16 " + shape_str(x.shape()) + " with positions");
  }
  EXPECT_EQ(rope(random_tensor({1, 4}, 41, DType::BF16, gpu()), 10000.0).dtype(), DType::BF16);
}

TEST(RopeCuda, MatchesCpuOnNonContiguousInputs) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::F32, DType::F64}) {
    const double tol = dt == DType::F32 ? 1e-6 : 1e-12;
    auto rt = [dt](const Shape& s, uint64_t seed) { return random_tensor(s, seed, dt); };
    // [B, T, H, D] seen as [B, H, T, D] (the attention layout), a last dim of stride 2, a
    // narrow view of the head dim, a plain [T, D].
    const Tensor a = rt({2, 37, 3, 14}, 1), b = rt({3, 9, 14, 2}, 2), c = rt({2, 11, 40}, 3);
    expect_parity([&](Device d) { return a.to(d).transpose(1, 2); }, Tensor(), tol, "transposed");
    expect_parity([&](Device d) { return b.to(d).select(3, 0); }, Tensor(), tol,
                  "last dim of stride 2");
    expect_parity([&](Device d) { return c.to(d).narrow(2, 5, 30); }, Tensor(), tol, "narrow");
    // Rows of stride 40 and half-width 16: vectors from column 8, one pair a thread from 1.
    expect_parity([&](Device d) { return c.to(d).narrow(2, 8, 32); }, Tensor(), tol,
                  "narrow from a vector");
    expect_parity([&](Device d) { return c.to(d).narrow(2, 1, 32); }, Tensor(), tol,
                  "narrow from mid-vector");
    const Tensor e = rt({17, 6}, 4);
    expect_parity([&](Device d) { return e.to(d); }, Tensor(), tol, "2-d");
  }
}

TEST(RopeCuda, MatchesCpuWithPositions) {
  SKIP_WITHOUT_GPU();
  const Tensor x = random_tensor({2, 3, 4, 10}, 5, DType::F32);
  auto make = [&](Device d) { return x.to(d); };
  expect_parity(make, from_vector<int64_t>({7, 3, 4096, 0}, {4}), 1e-6, "i64 positions");
  expect_parity(make, from_vector<int32_t>({1, 1, 250, 9}, {4}), 1e-6, "i32 positions");
}

TEST(RopeCuda, EmptyInputs) {
  SKIP_WITHOUT_GPU();
  EXPECT_EQ(rope(random_tensor({2, 0, 8}, 6).to(gpu()), 10000.0).shape(), (Shape{2, 0, 8}));
  EXPECT_EQ(rope(random_tensor({0, 5, 8}, 7).to(gpu()), 10000.0).shape(), (Shape{0, 5, 8}));
}

TEST(RopeCuda, GradientsMatchCpu) {
  SKIP_WITHOUT_GPU();
  const Tensor x = random_tensor({2, 5, 3, 8}, 8);
  const Tensor mix = random_tensor({2, 3, 5, 8}, 9);
  Variable c(x.transpose(1, 2), true), g(x.to(gpu()).transpose(1, 2), true);
  sum(mul(rope(c, 500.0), Variable(mix))).backward();
  sum(mul(rope(g, 500.0), Variable(mix.to(gpu())))).backward();
  EXPECT_ALL_CLOSE(g.grad(), c.grad(), 1e-12, 1e-12);
}

}  // namespace
}  // namespace moegrad
