#include <cmath>
#include <vector>

#include "autograd/ops.h"
#include "core/device.h"
#include "core/ops/unary.h"
#include "core/random.h"
#include "moe/losses.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::gpu;

// Router logits on a grid of 1/32: two experts' probabilities are equal on both backends or far
// apart, so both pick the same top-k.
Tensor grid_logits(int64_t n, int64_t e, uint64_t seed) {
  Generator gen(seed);
  return mul_scalar(randint(-96, 96, {n, e}, gen).to(DType::F32), 1.0 / 32);
}

// The router losses on the device against the CPU, values and the logits' gradients; the load
// balancing losses queue everything and wait for nothing (their top-k choices go to one_hot
// unchecked).
TEST(MoeLossesCuda, MatchTheCpuAndWaitForNothing) {
  SKIP_WITHOUT_GPU();
  std::vector<Variable> cpu, dev;
  for (uint64_t seed : {31, 32, 33}) {
    const Tensor logits = grid_logits(257, 64, seed);
    cpu.push_back(Variable(logits, true));
    dev.push_back(Variable(gpu(logits), true));
  }
  auto losses = [](const std::vector<Variable>& logits) {
    return load_balancing_loss_hf(logits, 8) + load_balancing_loss_megablocks(logits, 8) * 0.5 +
           router_z_loss(logits) * 0.25;
  };
  const int64_t waits = cuda_host_waits();
  const Variable on_gpu = losses(dev);
  EXPECT_EQ(cuda_host_waits(), waits);
  const Variable on_cpu = losses(cpu);
  EXPECT_NEAR(on_gpu.data().item(), on_cpu.data().item(), 1e-5 * std::abs(on_cpu.data().item()));
  on_gpu.backward();
  on_cpu.backward();
  for (size_t i = 0; i < cpu.size(); ++i)
    EXPECT_ALL_CLOSE(dev[i].grad(), cpu[i].grad(), 1e-6, 1e-5);
}

}  // namespace
}  // namespace moegrad
