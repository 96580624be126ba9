// Router steering on a GPU computes the CPU's steered logits (hard and soft forms).
#include <nlohmann/json.hpp>

#include "autograd/grad_mode.h"
#include "eval/steering.h"
#include "tests/testing.h"

namespace moegrad::eval {
namespace {

TEST(SteeringCuda, MatchesCpu) {
  SKIP_WITHOUT_GPU();
  NoGradGuard no_grad;
  const Tensor x = testing::random_tensor({37, 6}, 3, DType::F32);
  for (const char* text : {R"({"layers": [0, 0], "promote_all": [1, 4], "demote_all": [0]})",
                           R"({"mode": "soft", "lambda": 0.7, "layers": [0, 0], "promote_all": [5],
                               "demote_all": [2], "weights": {"0": {"5": 2.5}}})"}) {
    const RouterIntervention steer = steering_intervention(
        parse_steering(nlohmann::json::parse(text), "steering file s.json", {4, 6}));
    const Tensor cpu = steer(0, Variable(x)).data();
    const Tensor gpu = steer(0, Variable(testing::gpu(x))).data();
    EXPECT_TRUE(gpu.device().is_cuda());
    EXPECT_ALL_CLOSE(gpu.to(Device::cpu()), cpu, 1e-6, 1e-5);
  }
}

}  // namespace
}  // namespace moegrad::eval
