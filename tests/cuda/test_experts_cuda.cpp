// The experts' gathered GEMMs on the GPU (train.expert_gemm = gathered): moegrad's own bf16
// kernels with the group starts left on the device, against the CPU, and the forward's promise
// that the host does not wait for the device.
#include <map>
#include <string>

#include "autograd/ops.h"
#include "core/random.h"
#include "moe/experts.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

struct ExpertsRun {
  Tensor y, x_grad, w_grad;
  std::map<std::string, Tensor> grads;  // undefined: the parameter got none
  int64_t forward_waits = 0;
};

ExpertsRun run_experts(Device device, ExpertGemm gemm, const Tensor& x, const Tensor& w,
                       const Tensor& idx, const Tensor& g) {
  Generator gen(11);
  InitOptions init;
  init.gen = &gen;
  init.std = 0.1;
  OlmoeExperts ex(8, x.size(1), 40, init);
  ex.to(DType::BF16);
  ex.to(device);
  ex.set_gemm(gemm);
  Variable xv(x.to(device), true), wv(w.to(device), true);
  const Tensor idx_d = idx.to(device);
  const int64_t waits = cuda_host_waits();
  const Variable y = ex.forward(xv, wv, idx_d);
  ExpertsRun run;
  run.forward_waits = cuda_host_waits() - waits;
  y.backward(g.to(device));
  run.y = y.data().to(Device::cpu());
  run.x_grad = xv.grad().to(Device::cpu());
  run.w_grad = wv.grad().to(Device::cpu());
  for (const auto& [name, p] : ex.named_parameters())
    run.grads[name] = p.grad().defined() ? p.grad().to(Device::cpu()) : Tensor();
  return run;
}

TEST(ExpertsCuda, GatheredGemmsMatchTheCpuWithoutAHostWaitInTheForward) {
  SKIP_WITHOUT_GPU();
  // 300 tokens, top-2 of 8 experts, skewed: expert 5 gets none, expert 0 most.
  const int64_t n = 300;
  std::vector<int64_t> experts;
  for (int64_t t = 0; t < n; ++t)
    experts.insert(experts.end(), {t % 3 == 0 ? 0 : t % 5, 6 + t % 2});
  const Tensor idx = from_vector(experts, {n, 2});
  const Tensor x = random_tensor({n, 64}, 1, DType::BF16), w = random_tensor({n, 2}, 2, DType::F32),
               g = random_tensor({n, 64}, 3, DType::BF16);
  const ExpertsRun cpu = run_experts(Device::cpu(), ExpertGemm::Grouped, x, w, idx, g);
  const ExpertsRun gpu = run_experts(Device::cuda(), ExpertGemm::Gathered, x, w, idx, g);
  EXPECT_EQ(gpu.forward_waits, 0);
  EXPECT_ALL_CLOSE(gpu.y.to(DType::F32), cpu.y.to(DType::F32), 1e-2, 1e-2);
  EXPECT_ALL_CLOSE(gpu.x_grad.to(DType::F32), cpu.x_grad.to(DType::F32), 1e-2, 1e-2);
  EXPECT_ALL_CLOSE(gpu.w_grad, cpu.w_grad, 1e-2, 1e-2);
  for (const auto& [name, grad] : cpu.grads) {
    ASSERT_EQ(gpu.grads.at(name).defined(), grad.defined()) << name;
    if (grad.defined()) {
      EXPECT_ALL_CLOSE(gpu.grads.at(name).to(DType::F32), grad.to(DType::F32), 1e-2, 1e-2) << name;
    }
  }
  EXPECT_FALSE(gpu.grads.at("5.down_proj.weight").defined());  // no token reached it
  // The same bits run to run; the grouped path on the GPU computes the same function.
  const ExpertsRun again = run_experts(Device::cuda(), ExpertGemm::Gathered, x, w, idx, g);
  EXPECT_EQ(again.y.to_vector<float>(), gpu.y.to_vector<float>());
  EXPECT_EQ(again.grads.at("0.gate_proj.weight").to_vector<float>(),
            gpu.grads.at("0.gate_proj.weight").to_vector<float>());
  const ExpertsRun grouped = run_experts(Device::cuda(), ExpertGemm::Grouped, x, w, idx, g);
  EXPECT_ALL_CLOSE(grouped.y.to(DType::F32), gpu.y.to(DType::F32), 1e-2, 1e-2);
}

}  // namespace
}  // namespace moegrad
