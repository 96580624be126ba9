// Module::to a GPU and back: parameters that view one storage (the experts' slices of a stack)
// still share one, values survive the round trip, and the experts compute the same on the GPU.
#include "autograd/ops.h"
#include "moe/experts.h"
#include "nn/linear.h"
#include "tests/nn/param_gradcheck.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::f64_init;
using testing::random_tensor;

TEST(ModuleToCuda, ParametersOverOneStorageStillShareOne) {
  SKIP_WITHOUT_GPU();
  Tensor stack = random_tensor({2, 4, 3}, 12);
  struct Pair : Module {
    Pair(std::shared_ptr<Linear> a, std::shared_ptr<Linear> b) {
      register_module("a", std::move(a));
      register_module("b", std::move(b));
    }
  };
  Pair pair(std::make_shared<Linear>(stack.select(0, 0)),
            std::make_shared<Linear>(stack.select(0, 1)));
  pair.to(Device::cuda());
  Tensor pa = pair.parameter("a.weight").data(), pb = pair.parameter("b.weight").data();
  EXPECT_TRUE(pa.device().is_cuda());
  EXPECT_TRUE(pa.shares_storage(pb));
  EXPECT_EQ(pb.offset(), 12);
  EXPECT_EQ(pa.storage()->category(), MemoryCategory::Weights);
  pair.to(Device::cpu());
  pa = pair.parameter("a.weight").data();
  pb = pair.parameter("b.weight").data();
  EXPECT_TRUE(pa.shares_storage(pb));
  EXPECT_EQ(pa.to_vector<double>(), stack.select(0, 0).to_vector<double>());
  EXPECT_EQ(pb.to_vector<double>(), stack.select(0, 1).to_vector<double>());
}

TEST(ModuleToCuda, ExpertsStayOnOneStackAndComputeTheSame) {
  SKIP_WITHOUT_GPU();
  Generator gen(3);
  OlmoeExperts ex(3, 4, 2, f64_init(gen));
  Variable w = ex.parameter("1.up_proj.weight");
  const std::vector<double> before = ex.up_stack().to_vector<double>();
  const Tensor x = random_tensor({5, 4}, 4), wt = random_tensor({5, 2}, 5);
  const Tensor idx = from_vector<int64_t>({0, 1, 2, 0, 1, 2, 0, 1, 2, 0}, {5, 2});
  const Tensor y = ex.forward(Variable(x), Variable(wt), idx).data();
  ex.to(Device::cuda());
  for (auto [stack, proj] : {std::pair{ex.gate_stack(), "gate_proj"}, {ex.up_stack(), "up_proj"},
                             {ex.down_stack(), "down_proj"}}) {
    EXPECT_TRUE(stack.device().is_cuda()) << proj;
    for (int64_t e = 0; e < 3; ++e)
      EXPECT_TRUE(ex.expert_weight(e, proj).shares_storage(stack)) << proj << " " << e;
  }
  EXPECT_TRUE(w.data().shares_storage(ex.up_stack()));
  const Tensor y_gpu = ex.forward(Variable(x.to(Device::cuda())), Variable(wt.to(Device::cuda())),
                                  idx.to(Device::cuda()))
                           .data();
  EXPECT_ALL_CLOSE(y_gpu.to(Device::cpu()), y, 1e-12);
  ex.to(Device::cpu());
  EXPECT_TRUE(ex.expert_weight(2, "up_proj").shares_storage(ex.up_stack()));
  EXPECT_EQ(ex.up_stack().to_vector<double>(), before);
}

}  // namespace
}  // namespace moegrad
