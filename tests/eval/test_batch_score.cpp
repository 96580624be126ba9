// Batched scoring against score_tokens one sequence at a time: the same sums over padded
// batches of mixed lengths, contexts cut on the left to the model's positions, and the start
// token of text scored from its beginning.
#include <cmath>

#include "core/random.h"
#include "data/bpe_trainer.h"
#include "eval/batch_score.h"
#include "eval/score.h"
#include "tests/testing.h"
#include "tests/tiny_olmoe.h"

namespace moegrad::eval {
namespace {

// Weights large enough that log-probabilities differ clearly between tokens.
std::unique_ptr<OlmoeForCausalLM> tiny_model(int64_t vocab, int64_t max_positions, uint64_t seed = 3) {
  OlmoeConfig c = testing::tiny_olmoe_config(vocab, 4, 2, max_positions);
  c.eos_token_id = 2;
  Generator gen(seed);
  InitOptions init;
  init.gen = &gen;
  init.std = 0.5;
  return std::make_unique<OlmoeForCausalLM>(c, init);
}

TEST(BatchScore, EqualsScoringOneSequenceAtATime) {
  auto model = tiny_model(40, 16);
  const std::vector<ScoreRequest> requests = {
      {{}, {5, 6, 7}},
      {{1, 2, 3, 4}, {9}},
      {{7}, {8, 9, 10, 11, 12, 13, 14}},
      {{}, {30}},
      {{11, 12}, {}},  // nothing to score
      {{3, 3, 3}, {4, 4}},
      {{}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
  };
  BatchScoreOptions o;
  o.max_batch_tokens = 20;  // several batches, most of them padded
  int64_t calls = 0, last_done = 0;
  o.progress = [&](int64_t done, int64_t total) {
    ++calls;
    EXPECT_GT(done, last_done);
    last_done = done;
    EXPECT_EQ(total, 6);
  };
  const std::vector<ScoredSpan> spans = score_batched(*model, requests, o);
  ASSERT_EQ(spans.size(), requests.size());
  EXPECT_GE(calls, 3);
  EXPECT_EQ(last_done, 6);
  for (size_t i = 0; i < requests.size(); ++i) {
    const ScoreResult one = score_tokens(*model, requests[i].context, requests[i].continuation);
    EXPECT_NEAR(spans[i].logprob, one.logprob, 1e-5 * std::fabs(one.logprob) + 1e-6) << "request " << i;
    EXPECT_EQ(spans[i].tokens, int64_t(requests[i].continuation.size()));
    EXPECT_FALSE(spans[i].truncated);
  }
  EXPECT_EQ(spans[4].logprob, 0.0);
  // One sequence per forward gives the same numbers.
  o.max_batch_tokens = 1;
  o.progress = nullptr;
  const std::vector<ScoredSpan> alone = score_batched(*model, requests, o);
  for (size_t i = 0; i < requests.size(); ++i)
    EXPECT_NEAR(alone[i].logprob, spans[i].logprob, 1e-5 * std::fabs(spans[i].logprob) + 1e-6);
}

TEST(BatchScore, CutsLongContextsOnTheLeft) {
  auto model = tiny_model(40, 8);
  const std::vector<int32_t> context = {1, 2, 3, 4, 5, 6, 7, 8, 9}, continuation = {10, 11, 12};
  const std::vector<ScoredSpan> spans = score_batched(*model, {{context, continuation}});
  EXPECT_TRUE(spans[0].truncated);
  // The 8 positions hold the last 5 context tokens and the continuation.
  const ScoreResult kept = score_tokens(*model, {5, 6, 7, 8, 9}, continuation);
  EXPECT_NEAR(spans[0].logprob, kept.logprob, 1e-5 * std::fabs(kept.logprob));
  testing::expect_error(
      [&] {
        score_batched(*model, {{{1}, {1, 2}}, {{}, {1, 2, 3, 4, 5, 6, 7, 8}}});
      },
      "request 1: a continuation of 8 tokens does not fit the model's "
      "max_position_embeddings, 8");
  testing::expect_error(
      [&] {
        score_batched(*model, {{{1}, {1, 2}}, {{}, {3, 40}}});
      },
      "request 1: token id 40 is out of range [0, 40)");
}

TEST(BatchScore, StartTokenConditionsAnEmptyContext) {
  auto model = tiny_model(300, 16);
  BatchScoreOptions o;
  o.start_id = 7;
  const ScoredSpan with_start = score_batched(*model, {{{}, {5, 6}}}, o)[0];
  EXPECT_NEAR(with_start.logprob, score_tokens(*model, {7}, {5, 6}).logprob, 1e-5);
  // Without start_id: the model's EOS, as score_tokens.
  EXPECT_NEAR(score_batched(*model, {{{}, {5, 6}}})[0].logprob, score_tokens(*model, {}, {5, 6}).logprob,
              1e-5);

  OlmoeConfig c = model->config();
  EXPECT_EQ(start_token_id(c, nullptr), 2);
  c.bos_token_id = 4;
  EXPECT_EQ(start_token_id(c, nullptr), 4);
  // An EOS id from another vocabulary (OLMoE's 50279 in a model trained with its own
  // tokenizer) gives way to the tokenizer's <|endoftext|>.
  c.bos_token_id.reset();
  c.eos_token_id = 50279;
  data::BpeTrainerOptions opts;
  opts.vocab_size = 270;
  opts.special_tokens = {"<|pad|>", "<|endoftext|>"};
  const data::Tokenizer tok = data::train_bpe(std::vector<std::string>{"the cat sat on the mat"}, opts);
  EXPECT_EQ(start_token_id(c, &tok), 1);
  testing::expect_error([&] { start_token_id(c, nullptr); },
                        "its EOS id 50279 lies outside its vocabulary of 300");
}

}  // namespace
}  // namespace moegrad::eval
