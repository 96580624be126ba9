#include "core/ops/binary.h"
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
