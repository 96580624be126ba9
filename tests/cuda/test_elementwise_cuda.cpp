#include "core/cuda/caching_allocator.h"
#include "core/cuda/runtime.h"
#include "core/ops/binary.h"
#include "core/ops/compare.h"
#include "core/ops/swiglu.h"
#include "core/ops/unary.h"
#include "core/random.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

const Device kGpu = Device::cuda(0);

TEST(ElementwiseCuda, UnaryMatchesCpu) {
  SKIP_WITHOUT_GPU();
  Tensor x = testing::random_tensor({33, 65}, 1, DType::F32).t();  // non-contiguous
  for (UnaryOp op : {UnaryOp::Neg, UnaryOp::Exp, UnaryOp::Abs, UnaryOp::Tanh, UnaryOp::Sigmoid,
                     UnaryOp::Silu, UnaryOp::Relu, UnaryOp::Gelu, UnaryOp::Square}) {
    EXPECT_ALL_CLOSE(unary(op, x.to(kGpu)), unary(op, x), 1e-6, 1e-5) << int(op);
  }
  Tensor pos = add_scalar(abs(x), 0.1);
  for (UnaryOp op : {UnaryOp::Log, UnaryOp::Sqrt, UnaryOp::Rsqrt, UnaryOp::Reciprocal})
    EXPECT_ALL_CLOSE(unary(op, pos.to(kGpu)), unary(op, pos), 1e-6, 1e-5) << int(op);
  for (ActivationGrad op : {ActivationGrad::Sigmoid, ActivationGrad::Silu, ActivationGrad::Relu,
                            ActivationGrad::Gelu, ActivationGrad::Tanh}) {
    EXPECT_ALL_CLOSE(activation_backward(op, pos.to(kGpu), x.to(kGpu)), activation_backward(op, pos, x),
                     1e-6, 1e-5);
  }
  EXPECT_ALL_CLOSE(clamp(x.to(kGpu), -0.3, 0.7), clamp(x, -0.3, 0.7), 0, 0);
  EXPECT_ALL_CLOSE(pow_scalar(pos.to(kGpu), 1.5), pow_scalar(pos, 1.5), 1e-6, 1e-5);
}

TEST(ElementwiseCuda, CompareWhereAndF64) {
  SKIP_WITHOUT_GPU();
  Tensor a = testing::random_tensor({7, 1, 5}, 2), b = testing::random_tensor({3, 1}, 3);
  Tensor cpu = where(gt(a, b), a, b);
  Tensor gpu = where(gt(a.to(kGpu), b.to(kGpu)), a.to(kGpu), b.to(kGpu));
  EXPECT_ALL_CLOSE(gpu, cpu, 0, 0);
  EXPECT_ALL_CLOSE(binary(BinaryOp::Pow, abs(a).to(kGpu), b.to(kGpu)), binary(BinaryOp::Pow, abs(a), b), 1e-12, 1e-12);
}

TEST(ElementwiseCuda, CopiesConversionsAndFactories) {
  SKIP_WITHOUT_GPU();
  Tensor x = testing::random_tensor({17, 9}, 4, DType::F32);
  Tensor g = x.to(kGpu);
  EXPECT_EQ(g.device(), kGpu);
  EXPECT_ALL_CLOSE(g.to(Device::cpu()), x, 0, 0);
  EXPECT_ALL_CLOSE(g.t().contiguous(), x.t().contiguous(), 0, 0);
  EXPECT_ALL_CLOSE(g.to(DType::BF16).to(DType::F32), x.to(DType::BF16).to(DType::F32), 0, 0);
  EXPECT_ALL_CLOSE(g.to(DType::F16).to(DType::F32), x.to(DType::F16).to(DType::F32), 0, 0);
  EXPECT_ALL_CLOSE(full({3, 5}, 2.5, DType::F32, kGpu), full({3, 5}, 2.5), 0, 0);
  Generator a(3), b(3);
  EXPECT_ALL_CLOSE(randn({100}, a, DType::F32, kGpu), randn({100}, b), 0, 0);
}

// Dense operands run the dense kernel: 16-byte vectors of the widest operand when every address
// is aligned to its vector, one element a thread when a view starts mid-vector; lengths below,
// at and past a vector, and a tail of a partial vector. Each op matches the CPU, in place too.
TEST(ElementwiseCuda, DenseKernelsMatchCpuAtEveryAlignmentAndLength) {
  SKIP_WITHOUT_GPU();
  uint64_t seed = 30;
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t n : {1, 7, 8, 9, 63, 4103})
      for (int64_t shift : {0, 1, 3, 4}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " n " << n << " shift " << shift);
        // The same values on both devices, as views that start `shift` elements in.
        auto pair = [&](DType type) {
          const Tensor whole = testing::random_tensor({n + 4}, seed++, type);
          return std::pair{whole.narrow(0, shift, n), whole.to(kGpu).narrow(0, shift, n)};
        };
        const auto [a, ga] = pair(dt);
        const auto [b, gb] = pair(dt);
        const double tol = dt == DType::F32 ? 1e-6 : 1e-2;
        EXPECT_ALL_CLOSE(add(ga, gb), add(a, b), 0, 0);
        EXPECT_ALL_CLOSE(exp(ga), exp(a), tol, tol);
        EXPECT_ALL_CLOSE(add_scalar(ga, 0.25), add_scalar(a, 0.25), 0, 0);
        EXPECT_ALL_CLOSE(activation_backward(ActivationGrad::Silu, ga, gb),
                         activation_backward(ActivationGrad::Silu, a, b), tol, tol);
        EXPECT_ALL_CLOSE(gt(ga, gb), gt(a, b), 0, 0);
        EXPECT_ALL_CLOSE(where(gt(ga, gb), ga, gb), where(gt(a, b), a, b), 0, 0);
        EXPECT_ALL_CLOSE(swiglu(ga, gb), swiglu(a, b), tol, tol);
        const DType other = dt == DType::F32 ? DType::BF16 : DType::F32;
        EXPECT_ALL_CLOSE(ga.to(other), a.to(other), 0, 0);
        const auto [c, gc] = pair(other);
        EXPECT_ALL_CLOSE(gc.to(dt), c.to(dt), 0, 0);
        // In place, into the unaligned view itself, and a fill of it.
        add_(ga, gb);
        add_(a, b);
        EXPECT_ALL_CLOSE(ga, a, 0, 0);
        ga.fill_(1.5);
        EXPECT_ALL_CLOSE(ga, full({n}, 1.5, dt), 0, 0);
      }
}

TEST(ElementwiseCuda, CachingAllocatorReusesFreedBlocks) {
  SKIP_WITHOUT_GPU();
  cuda::synchronize(0);
  size_t before = cuda::memory_stats(0).reserved;
  { Tensor t = empty({1 << 20}, DType::F32, kGpu); }
  size_t after_first = cuda::memory_stats(0).reserved;
  { Tensor t = empty({1 << 20}, DType::F32, kGpu); }
  EXPECT_EQ(cuda::memory_stats(0).reserved, after_first);
  EXPECT_GE(after_first, before);
  EXPECT_GE(cuda::memory_stats(0).peak_allocated, size_t(4) << 20);
}

}  // namespace
}  // namespace moegrad

namespace moegrad {
namespace {

// bf16 on both backends is the f32 function rounded once: equal but for the last bit where
// the GPU's f32 math library differs from the CPU's.
TEST(ElementwiseCuda, Bf16MatchesCpuBf16) {
  SKIP_WITHOUT_GPU();
  const Device gpu = Device::cuda(0);
  Tensor x = testing::random_tensor({33, 65}, 5, DType::BF16).t();  // odd, non-contiguous
  Tensor pos = add_scalar(abs(x), 0.1);
  for (UnaryOp op : {UnaryOp::Neg, UnaryOp::Exp, UnaryOp::Log, UnaryOp::Sqrt, UnaryOp::Rsqrt,
                     UnaryOp::Abs, UnaryOp::Sign, UnaryOp::Square, UnaryOp::Reciprocal,
                     UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::Silu, UnaryOp::Relu,
                     UnaryOp::Gelu}) {
    bool needs_positive = op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt;
    Tensor in = needs_positive ? pos : x;
    Tensor out = unary(op, in.to(gpu));
    EXPECT_EQ(out.dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(out, unary(op, in), 1e-2, 1e-2) << unary_op_name(op);
  }
  Tensor g = testing::random_tensor({65, 33}, 6, DType::BF16);
  for (ActivationGrad op : {ActivationGrad::Sigmoid, ActivationGrad::Silu, ActivationGrad::Relu,
                            ActivationGrad::Gelu, ActivationGrad::Tanh}) {
    EXPECT_ALL_CLOSE(activation_backward(op, g.to(gpu), x.to(gpu)), activation_backward(op, g, x),
                     1e-2, 1e-2)
        << int(op);
  }
  for (ScalarOp op : {ScalarOp::Add, ScalarOp::Mul, ScalarOp::RSub, ScalarOp::RDiv, ScalarOp::Pow,
                      ScalarOp::Clamp}) {
    Tensor in = op == ScalarOp::Pow ? pos : x;
    EXPECT_ALL_CLOSE(scalar_op(op, in.to(gpu), 0.3, 0.9), scalar_op(op, in, 0.3, 0.9), 1e-2, 1e-2)
        << scalar_op_name(op);
  }
  Tensor y = testing::random_tensor({65, 1}, 7, DType::BF16);  // one value per row of x, broadcast along it
  EXPECT_ALL_CLOSE(gt(x.to(gpu), y.to(gpu)), gt(x, y), 0, 0);
  EXPECT_ALL_CLOSE(where(le(x.to(gpu), y.to(gpu)), x.to(gpu), y.to(gpu)), where(le(x, y), x, y), 0,
                   0);
}

}  // namespace
}  // namespace moegrad
