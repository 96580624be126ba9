#include <array>
#include <functional>
#include <string>

#include "autograd/ops/swiglu.h"
#include "core/ops/swiglu.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

Device gpu() { return Device::cuda(); }

// The operands gate, up, grad built on a device. Views are taken there, since Tensor::to copies
// into a contiguous tensor.
using Operands = std::function<std::array<Tensor, 3>(Device)>;

// Forward and backward (both gradients, and each one alone) on the GPU against the CPU.
void expect_parity(const Operands& make, double tol, const std::string& what) {
  const auto [g, u, grad] = make(Device::cpu());
  const auto [gg, gu, ggrad] = make(gpu());
  Tensor out = swiglu(gg, gu);
  EXPECT_EQ(out.device(), gpu()) << what;
  EXPECT_EQ(out.dtype(), g.dtype()) << what;
  EXPECT_ALL_CLOSE(out, swiglu(g, u), tol, tol) << what;
  auto [dg, du] = swiglu_backward(grad, g, u);
  auto [gdg, gdu] = swiglu_backward(ggrad, gg, gu);
  EXPECT_ALL_CLOSE(gdg, dg, tol, tol) << what;
  EXPECT_ALL_CLOSE(gdu, du, tol, tol) << what;
  auto [only_g, no_u] = swiglu_backward(ggrad, gg, gu, true, false);
  EXPECT_FALSE(no_u.defined()) << what;
  EXPECT_ALL_CLOSE(only_g, dg, tol, tol) << what;
  auto [no_g, only_u] = swiglu_backward(ggrad, gg, gu, false, true);
  EXPECT_FALSE(no_g.defined()) << what;
  EXPECT_ALL_CLOSE(only_u, du, tol, tol) << what;
  // The scaled form (2-D operands): a scale a row, d_gate and d_up into the halves of one
  // tensor, the scale's gradient a row's sum (a warp a row below 1024 vectors or single
  // columns, a block above).
  if (g.dim() != 2 || g.size(0) == 0) return;
  const Tensor scale = random_tensor({g.size(0), 1}, 7, g.dtype());
  const Tensor gscale = scale.to(gpu());
  EXPECT_ALL_CLOSE(swiglu_scaled(gg, gu, gscale), swiglu_scaled(g, u, scale), tol, tol) << what;
  const SwigluScaledGrads cpu = swiglu_scaled_backward(grad, g, u, scale, true, true);
  const SwigluScaledGrads cuda = swiglu_scaled_backward(ggrad, gg, gu, gscale, true, true);
  EXPECT_ALL_CLOSE(cuda.gate_up, cpu.gate_up, tol, tol) << what;
  EXPECT_ALL_CLOSE(cuda.scale, cpu.scale, tol, tol) << what;
  EXPECT_ALL_CLOSE(swiglu_scaled_backward(ggrad, gg, gu, gscale, false, true).scale, cpu.scale,
                   tol, tol)
      << what;
  EXPECT_ALL_CLOSE(swiglu_scaled_backward(ggrad, gg, gu, gscale, true, false).gate_up,
                   cpu.gate_up, tol, tol)
      << what;
  // Run to run, the same bits.
  EXPECT_ALL_CLOSE(swiglu_scaled_backward(ggrad, gg, gu, gscale, true, true).scale, cuda.scale, 0,
                   0)
      << what;
}

void expect_parity_in(DType dt, double tol) {
  const std::string name = dtype_name(dt);
  // Rows of 32, 1024 and 8192 columns split into 16-byte vectors (8192: a block a row in every
  // dtype), 33, 1 and 1025 do not (1025: a block a row of single columns).
  for (Shape s : {Shape{65, 33}, Shape{1, 1}, Shape{257, 1025}, Shape{65, 32}, Shape{257, 1024},
                  Shape{9, 8192}}) {
    const Tensor g = random_tensor(s, 1, dt), u = random_tensor(s, 2, dt), grad = random_tensor(s, 3, dt);
    expect_parity([&](Device d) { return std::array{g.to(d), u.to(d), grad.to(d)}; }, tol,
                  name + " " + shape_str(s));
  }
  // A transposed gate, a narrowed up, a transposed grad: the strided index on every operand.
  const Tensor a = random_tensor({33, 65}, 4, dt), b = random_tensor({65, 40}, 5, dt);
  const Tensor c = random_tensor({33, 65}, 6, dt);
  expect_parity([&](Device d) { return std::array{a.to(d).t(), b.to(d).narrow(1, 3, 33), c.to(d).t()}; },
                tol, name + " non-contiguous");
  // gate and up side by side in one tensor (as in the experts' [rows, 2 x I]): rows of stride
  // 136, in vectors; and the same with every row starting one element further (the kernels
  // then take one element a thread).
  const Tensor gate_up = random_tensor({65, 136}, 8, dt), g2 = random_tensor({65, 64}, 9, dt);
  for (int64_t start : {0, 1}) {
    expect_parity(
        [&](Device d) {
          const Tensor t = gate_up.to(d);
          return std::array{t.narrow(1, start, 64), t.narrow(1, start + 64, 64), g2.to(d)};
        },
        tol, name + " halves from column " + std::to_string(start));
  }
}

TEST(SwigluCuda, F32MatchesCpu) {
  SKIP_WITHOUT_GPU();
  expect_parity_in(DType::F32, 1e-5);
}

TEST(SwigluCuda, F64MatchesCpu) {
  SKIP_WITHOUT_GPU();
  expect_parity_in(DType::F64, 1e-12);
}

// bf16 is read and written as bf16 and computed in f32 on both backends: the same function.
TEST(SwigluCuda, Bf16MatchesCpuBf16) {
  SKIP_WITHOUT_GPU();
  expect_parity_in(DType::BF16, 1e-2);
}

TEST(SwigluCuda, EmptyTensor) {
  SKIP_WITHOUT_GPU();
  Tensor g = zeros({0, 7}, DType::F32, gpu());
  EXPECT_EQ(swiglu(g, g).shape(), (Shape{0, 7}));
  auto [dg, du] = swiglu_backward(g, g, g);
  EXPECT_EQ(dg.shape(), (Shape{0, 7}));
  EXPECT_EQ(du.shape(), (Shape{0, 7}));
}

TEST(SwigluCuda, AutogradOnTheGpu) {
  SKIP_WITHOUT_GPU();
  Tensor g = random_tensor({9, 5}, 7, DType::F32), u = random_tensor({9, 5}, 8, DType::F32);
  Tensor w = random_tensor({9, 5}, 9, DType::F32);
  auto grads = [&](Device d) {
    Variable gv(g.to(d), true), uv(u.to(d), true);
    swiglu(gv, uv).backward(w.to(d));
    return std::array{gv.grad(), uv.grad()};
  };
  auto [cg, cu] = grads(Device::cpu());
  auto [gg, gu] = grads(gpu());
  EXPECT_EQ(gg.device(), gpu());
  EXPECT_ALL_CLOSE(gg, cg, 1e-5, 1e-5);
  EXPECT_ALL_CLOSE(gu, cu, 1e-5, 1e-5);
}

}  // namespace
}  // namespace moegrad
