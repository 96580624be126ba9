#include "eval/batch_score.h"

#include <algorithm>
#include <string>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/ops/index.h"
#include "core/ops/softmax.h"

namespace moegrad::eval {
namespace {

// A request laid out as the model sees it: ids[first..] are scored.
struct Sequence {
  std::vector<int64_t> ids;
  int64_t first = 0;
};

Sequence layout(const ScoreRequest& r, int32_t start, const OlmoeConfig& c, size_t index, ScoredSpan& span) {
  const int64_t max_len = c.max_position_embeddings, n = int64_t(r.continuation.size());
  MOEGRAD_CHECK(n < max_len, "score_batched: request ", index, ": a continuation of ", n,
                " tokens does not fit the model's max_position_embeddings, ", max_len,
                ", with one token before it");
  Sequence s;
  if (r.context.empty()) s.ids.push_back(start);
  auto begin = r.context.begin();
  if (int64_t(r.context.size()) + n > max_len) {
    begin = r.context.end() - (max_len - n);
    span.truncated = true;
  }
  s.ids.insert(s.ids.end(), begin, r.context.end());
  s.first = int64_t(s.ids.size());
  s.ids.insert(s.ids.end(), r.continuation.begin(), r.continuation.end());
  for (int64_t id : s.ids)
    MOEGRAD_CHECK(id >= 0 && id < c.vocab_size, "score_batched: request ", index, ": token id ", id,
                  " is out of range [0, ", c.vocab_size, ")");
  return s;
}

// Scores one batch of sequences, the longest first, into their spans.
void run_batch(const OlmoeForCausalLM& model, const std::vector<Sequence>& seqs,
               const std::vector<size_t>& batch, std::vector<ScoredSpan>& spans) {
  const int64_t B = int64_t(batch.size()), T = int64_t(seqs[batch[0]].ids.size());
  // Padding ids and the targets of padded positions are never read back; 0 is in every vocab.
  std::vector<int64_t> ids(size_t(B * T), 0), targets(size_t(B * T), 0);
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int64_t>& s = seqs[batch[size_t(b)]].ids;
    std::copy(s.begin(), s.end(), ids.begin() + b * T);
    std::copy(s.begin() + 1, s.end(), targets.begin() + b * T);
  }
  const Device device = model.device();
  Tensor logits = model.forward(from_vector(ids, {B, T}).to(device)).hidden.data();
  Tensor picked = gather(log_softmax(logits, -1), 2, from_vector(targets, {B, T, 1}).to(device));
  const std::vector<double> lp = picked.to_vector<double>();
  for (int64_t b = 0; b < B; ++b) {
    const Sequence& s = seqs[batch[size_t(b)]];
    ScoredSpan& span = spans[batch[size_t(b)]];
    // Position p predicts token p + 1.
    for (int64_t p = s.first - 1; p + 1 < int64_t(s.ids.size()); ++p) span.logprob += lp[size_t(b * T + p)];
    span.tokens = int64_t(s.ids.size()) - s.first;
  }
}

}  // namespace

std::vector<ScoredSpan> score_batched(const OlmoeForCausalLM& model,
                                      const std::vector<ScoreRequest>& requests,
                                      const BatchScoreOptions& options) {
  const OlmoeConfig& c = model.config();
  MOEGRAD_CHECK(options.max_batch_tokens >= 1, "score_batched: max_batch_tokens must be positive, got ",
                options.max_batch_tokens);
  std::optional<int64_t> start = options.start_id;
  if (!start) start = c.bos_token_id ? c.bos_token_id : c.eos_token_id;
  const bool any_empty_context = std::any_of(requests.begin(), requests.end(), [](const ScoreRequest& r) {
    return r.context.empty() && !r.continuation.empty();
  });
  MOEGRAD_CHECK(start.has_value() || !any_empty_context,
                "score_batched: the model has neither a BOS nor an EOS id to condition the first "
                "token on; give a start_id or a context");

  std::vector<ScoredSpan> spans(requests.size());
  std::vector<Sequence> seqs(requests.size());
  std::vector<size_t> order;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].continuation.empty()) continue;
    seqs[i] = layout(requests[i], int32_t(start.value_or(0)), c, i, spans[i]);
    order.push_back(i);
  }
  // Longest first, so each batch's padding is at most the spread of lengths within it.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return seqs[a].ids.size() > seqs[b].ids.size(); });

  NoGradGuard no_grad;
  int64_t done = 0;
  for (size_t i = 0; i < order.size();) {
    const int64_t T = int64_t(seqs[order[i]].ids.size());
    const size_t rows = size_t(std::max<int64_t>(1, options.max_batch_tokens / T));
    const size_t end = std::min(order.size(), i + rows);
    run_batch(model, seqs, std::vector<size_t>(order.begin() + i, order.begin() + end), spans);
    done += int64_t(end - i);
    i = end;
    if (options.progress) options.progress(done, int64_t(order.size()));
  }
  return spans;
}

int32_t start_token_id(const OlmoeConfig& config, const data::Tokenizer* tokenizer) {
  for (const std::optional<int64_t>& id : {config.bos_token_id, config.eos_token_id})
    if (id && *id >= 0 && *id < config.vocab_size) return int32_t(*id);
  if (tokenizer) {
    if (std::optional<int32_t> id = tokenizer->token_to_id("<|endoftext|>"); id && *id < config.vocab_size)
      return *id;
  }
  std::string named = config.eos_token_id
                          ? "its EOS id " + std::to_string(*config.eos_token_id) +
                                " lies outside its vocabulary of " + std::to_string(config.vocab_size)
                          : std::string("it has neither a BOS nor an EOS id");
  throw Error("no start token to condition text on: " + named +
              ", and the tokenizer has no <|endoftext|> token");
}

}  // namespace moegrad::eval
