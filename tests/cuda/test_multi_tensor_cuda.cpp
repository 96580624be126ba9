#include "core/ops/multi_tensor.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::gpu;
using testing::random_tensor;

std::vector<Tensor> list_on(Device device) {
  std::vector<Tensor> ts = {random_tensor({3, 5}, 1, DType::F32), random_tensor({70001}, 2),
                            random_tensor({4097}, 3, DType::F32), random_tensor({1}, 4),
                            random_tensor({6, 4}, 5, DType::F32).t()};
  for (Tensor& t : ts) t = device.is_cuda() ? gpu(t) : t;
  return ts;
}

TEST(MultiTensorCuda, SumOfSquaresMatchesCpuAndRepeatsBitForBit) {
  SKIP_WITHOUT_GPU();
  const double cpu = sum_of_squares(list_on(Device::cpu())).item();
  const std::vector<Tensor> ts = list_on(Device::cuda());
  const Tensor s = sum_of_squares(ts);
  EXPECT_TRUE(s.device().is_cuda());
  EXPECT_NEAR(s.item(), cpu, 1e-12 * cpu);
  EXPECT_EQ(sum_of_squares(ts).item(), s.item());
}

TEST(MultiTensorCuda, ScaleMatchesCpuBitForBit) {
  SKIP_WITHOUT_GPU();
  std::vector<Tensor> cpu = list_on(Device::cpu()), cuda = list_on(Device::cuda());
  scale_(cpu, 0.61);
  scale_(cuda, 0.61);
  for (size_t i = 0; i < cpu.size(); ++i) EXPECT_ALL_CLOSE(cuda[i], cpu[i], 0, 0);
}

// The lists above are whole tensors (16-byte aligned: vectors a thread, with partial last
// vectors); a view that starts mid-vector puts its launch on one element a thread.
TEST(MultiTensorCuda, AViewStartingMidVectorMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::F32, DType::BF16}) {
    auto list = [&](Device device) {
      const Tensor whole = random_tensor({5001}, 21, dt), other = random_tensor({64}, 22, dt);
      return std::vector<Tensor>{(device.is_cuda() ? gpu(whole) : whole).narrow(0, 1, 5000),
                                 device.is_cuda() ? gpu(other) : other};
    };
    const double cpu = sum_of_squares(list(Device::cpu())).item();
    EXPECT_NEAR(sum_of_squares(list(Device::cuda())).item(), cpu, 1e-12 * cpu);
    std::vector<Tensor> c = list(Device::cpu()), g = list(Device::cuda());
    scale_(c, 0.61);
    scale_(g, 0.61);
    for (size_t i = 0; i < c.size(); ++i) EXPECT_ALL_CLOSE(g[i], c[i], 0, 0);
    std::vector<Tensor> c_sums, g_sums;
    for (const Tensor& t : c) {
      c_sums.push_back(random_tensor(t.shape(), 23, DType::F32));
      g_sums.push_back(gpu(c_sums.back()));
    }
    accumulate_(c_sums, c);
    accumulate_(g_sums, g);
    for (size_t i = 0; i < c.size(); ++i) EXPECT_ALL_CLOSE(g_sums[i], c_sums[i], 0, 0);
  }
}

}  // namespace
}  // namespace moegrad

namespace moegrad {
namespace {

std::vector<Tensor> bf16_list_on(Device device) {
  std::vector<Tensor> ts = {random_tensor({3, 5}, 11, DType::BF16),
                            random_tensor({70001}, 12, DType::F32),
                            random_tensor({4097}, 13, DType::BF16),
                            random_tensor({1}, 14, DType::BF16),
                            random_tensor({6, 4}, 15, DType::BF16).t()};
  for (Tensor& t : ts) t = device.is_cuda() ? gpu(t) : t;
  return ts;
}

TEST(MultiTensorCuda, Bf16AndF32ListsMatchCpu) {
  SKIP_WITHOUT_GPU();
  const double cpu = sum_of_squares(bf16_list_on(Device::cpu())).item();
  const std::vector<Tensor> ts = bf16_list_on(Device::cuda());
  EXPECT_NEAR(sum_of_squares(ts).item(), cpu, 1e-12 * cpu);
  std::vector<Tensor> c = bf16_list_on(Device::cpu()), g = bf16_list_on(Device::cuda());
  scale_(c, 0.61);
  scale_(g, 0.61);
  for (size_t i = 0; i < c.size(); ++i) {
    EXPECT_EQ(g[i].dtype(), c[i].dtype());
    EXPECT_ALL_CLOSE(g[i], c[i], 0, 0);
  }
}

}  // namespace
}  // namespace moegrad

namespace moegrad {
namespace {

// The widening adds of gradient accumulation: bit for bit, one launch per addend dtype.
TEST(MultiTensorCuda, AccumulateMatchesCpuBitForBit) {
  SKIP_WITHOUT_GPU();
  std::vector<Tensor> c_sums, g_sums, c_add, g_add;
  const std::vector<Tensor> addends = bf16_list_on(Device::cpu());
  for (size_t i = 0; i < addends.size(); ++i) {
    c_sums.push_back(random_tensor(addends[i].shape(), 30 + i, DType::F32));
    g_sums.push_back(gpu(c_sums.back()));
    c_add.push_back(i == 2 ? Tensor() : addends[i]);  // one parameter without a gradient
    g_add.push_back(i == 2 ? Tensor() : gpu(addends[i]));
  }
  accumulate_(c_sums, c_add);
  accumulate_(g_sums, g_add);
  for (size_t i = 0; i < c_sums.size(); ++i) EXPECT_ALL_CLOSE(g_sums[i], c_sums[i], 0, 0);
}

}  // namespace
}  // namespace moegrad
