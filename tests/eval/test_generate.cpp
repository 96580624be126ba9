#include "autograd/grad_mode.h"
#include "eval/generate.h"
#include "moe/checkpoint.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

const std::string kBase = std::string(MOEGRAD_SOURCE_DIR) + "/tests/reference/olmoe/base";

TEST(Generate, GreedyFollowsTheArgmaxOfEachStep) {
  auto model = load_olmoe(kBase);
  GenerateOptions o;
  o.max_new_tokens = 4;
  o.temperature = 0;
  std::vector<int32_t> out = generate(*model, {3, 4}, o);
  ASSERT_EQ(out.size(), 6u);
  NoGradGuard no_grad;
  for (size_t n = 2; n < out.size(); ++n) {
    std::vector<int64_t> prefix(out.begin(), out.begin() + n);
    Tensor logits = model->forward(from_vector<int64_t>(prefix, {1, int64_t(n)})).hidden.data();
    std::vector<float> last = logits.select(0, 0).select(0, -1).to_vector<float>();
    EXPECT_EQ(out[n], std::max_element(last.begin(), last.end()) - last.begin()) << "step " << n;
  }
}

TEST(Generate, SamplingIsDeterministicForASeedAndRespectsTopK) {
  auto model = load_olmoe(kBase);
  GenerateOptions o;
  o.max_new_tokens = 6;
  o.temperature = 1.5;
  o.seed = 7;
  EXPECT_EQ(generate(*model, {3, 4}, o), generate(*model, {3, 4}, o));
  o.top_k = 1;  // top-1 sampling is greedy
  GenerateOptions greedy = o;
  greedy.temperature = 0;
  EXPECT_EQ(generate(*model, {3, 4}, o), generate(*model, {3, 4}, greedy));
}

TEST(Generate, StopsAtEosAndChecksArguments) {
  auto model = load_olmoe(kBase);
  GenerateOptions o;
  o.temperature = 0;
  o.max_new_tokens = 1;
  int32_t first = generate(*model, {3, 4}, o).back();
  // Pretend the greedy token is EOS: generation stops right after it.
  OlmoeConfig c = model->config();
  c.eos_token_id = first;
  OlmoeForCausalLM same(c);
  auto src = model->hf_named_tensors();
  auto dst = same.hf_named_tensors();
  for (size_t i = 0; i < src.size(); ++i) dst[i].second.copy_(src[i].second);
  o.max_new_tokens = 10;
  EXPECT_EQ(generate(same, {3, 4}, o), (std::vector<int32_t>{3, 4, first}));
  testing::expect_error([&] { generate(*model, {}, o); }, "prompt is empty");
  GenerateOptions limited = o;
  limited.vocab_limit = 10;
  for (int32_t id : generate(*model, {3, 4}, limited)) EXPECT_LT(id, 10);
  testing::expect_error([&] { generate(*model, {700}, o); }, "prompt token id 700 is out of range");
  o.temperature = -1;
  testing::expect_error([&] { generate(*model, {1}, o); }, "temperature must be >= 0");
}

}  // namespace
}  // namespace moegrad
