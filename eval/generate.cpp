#include "eval/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/grad_mode.h"
#include "core/random.h"

namespace moegrad {
namespace {

// The next token from the last position's logits.
int32_t pick(std::vector<double> logits, const GenerateOptions& o, Generator& gen) {
  if (o.temperature == 0) return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  int64_t k = o.top_k > 0 ? std::min<int64_t>(o.top_k, int64_t(order.size())) : int64_t(order.size());
  // Ties keep the lower id first, so the candidate set does not depend on the sort.
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  double top = logits[order[0]], total = 0;
  std::vector<double> p(k);
  for (int64_t i = 0; i < k; ++i) total += p[i] = std::exp((logits[order[i]] - top) / o.temperature);
  double u = rand({}, gen, DType::F64).item() * total;
  for (int64_t i = 0; i < k; ++i) {
    if (u < p[i]) return order[i];
    u -= p[i];
  }
  return order[k - 1];
}

}  // namespace

std::vector<int32_t> generate(const OlmoeForCausalLM& model, std::vector<int32_t> prompt,
                              const GenerateOptions& o) {
  const OlmoeConfig& c = model.config();
  MOEGRAD_CHECK(!prompt.empty(), "generate: the prompt is empty");
  MOEGRAD_CHECK(o.temperature >= 0, "generate: temperature must be >= 0, got ", o.temperature);
  MOEGRAD_CHECK(o.top_k >= 0, "generate: top_k must be >= 0, got ", o.top_k);
  for (int32_t id : prompt)
    MOEGRAD_CHECK(id >= 0 && id < c.vocab_size, "generate: prompt token id ", id, " is out of range [0, ",
                  c.vocab_size, ")");
  NoGradGuard no_grad;
  Generator gen(o.seed);
  for (int64_t step = 0; step < o.max_new_tokens; ++step) {
    std::vector<int64_t> ids(prompt.begin(), prompt.end());
    Tensor logits =
        model.forward(from_vector<int64_t>(ids, {1, int64_t(ids.size())}).to(model.device()))
            .hidden.data();
    std::vector<double> last = logits.select(0, 0).select(0, -1).to_vector<double>();
    if (o.vocab_limit > 0 && o.vocab_limit < int64_t(last.size())) last.resize(o.vocab_limit);
    int32_t next = pick(std::move(last), o, gen);
    prompt.push_back(next);
    if (c.eos_token_id && next == *c.eos_token_id) break;
  }
  return prompt;
}

}  // namespace moegrad
