// Scoring many (context, continuation) pairs with few forwards: the sequences are sorted by
// length and cut into right-padded [B, T] batches within a token budget. Under the causal mask
// padding after a sequence changes none of its positions, and MoE routing is per token and
// dropless, so each sum equals score_tokens' (eval/score.h) up to float rounding.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "data/tokenizer.h"
#include "moe/olmoe.h"

namespace moegrad::eval {

struct ScoreRequest {
  std::vector<int32_t> context;       // conditions but is not scored; empty: the start token
  std::vector<int32_t> continuation;  // scored
};

struct ScoredSpan {
  double logprob = 0;      // sum of log p(token | everything before it) over the continuation
  int64_t tokens = 0;      // continuation tokens
  bool truncated = false;  // the context lost tokens on the left to fit the model's positions
};

struct BatchScoreOptions {
  // Padded tokens (B x T) of one forward; a longer sequence still goes, alone.
  int64_t max_batch_tokens = 4096;
  // What conditions an empty context; default: the model's BOS id, else its EOS id.
  std::optional<int32_t> start_id;
  // Called after each forward with the sequences scored so far and the number to score
  // (requests with an empty continuation need none).
  std::function<void(int64_t done, int64_t total)> progress;
};

// One span per request, in request order. The model runs on its own device without
// gradients. A request longer than max_position_embeddings keeps its whole continuation and
// the right end of its context (a continuation that cannot fit with one token before it is an
// error naming the request); an out-of-vocabulary id is an error naming the request.
std::vector<ScoredSpan> score_batched(const OlmoeForCausalLM& model,
                                      const std::vector<ScoreRequest>& requests,
                                      const BatchScoreOptions& options = {});

// The token that conditions text scored from its start: the model's BOS id, else its EOS id,
// when inside the vocabulary; else the tokenizer's "<|endoftext|>" (the document separator
// moegrad train uses when config.json names an EOS from another vocabulary); else an error.
int32_t start_token_id(const OlmoeConfig& config, const data::Tokenizer* tokenizer);

}  // namespace moegrad::eval
