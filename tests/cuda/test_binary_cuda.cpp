#include "core/ops/binary.h"
#include "core/ops/unary.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

TEST(BinaryCuda, MatchesCpuWithBroadcastingAndStrides) {
  SKIP_WITHOUT_GPU();
  Tensor a = testing::random_tensor({37, 5}, 1, DType::F32).t();
  Tensor b = testing::random_tensor({37}, 2, DType::F32);
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum}) {
    Tensor cpu = binary(op, a, b);
    Tensor gpu = binary(op, a.to(Device::cuda()), b.to(Device::cuda()));
    EXPECT_ALL_CLOSE(gpu, cpu, 0, 1e-6);
  }
}

}  // namespace
}  // namespace moegrad

namespace moegrad {
namespace {

// bf16 on both backends is the f32 op rounded once; only the f32 math may differ (pow).
TEST(BinaryCuda, Bf16MatchesCpuBf16) {
  SKIP_WITHOUT_GPU();
  Tensor a = testing::random_tensor({37, 5}, 3, DType::BF16).t();  // [5, 37], non-contiguous
  Tensor b = testing::random_tensor({37}, 4, DType::BF16);
  Tensor base = add_scalar(abs(a), 0.25);
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow,
                      BinaryOp::Maximum, BinaryOp::Minimum}) {
    Tensor x = op == BinaryOp::Pow ? base : a;
    Tensor gpu = binary(op, x.to(Device::cuda()), b.to(Device::cuda()));
    EXPECT_EQ(gpu.dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(gpu, binary(op, x, b), 1e-2, 1e-2) << binary_op_name(op);
  }
  Tensor acc = a.contiguous(), acc_gpu = acc.to(Device::cuda());
  add_(acc, b);
  add_(acc_gpu, b.to(Device::cuda()));
  EXPECT_ALL_CLOSE(acc_gpu, acc, 0, 0);
}

}  // namespace
}  // namespace moegrad
