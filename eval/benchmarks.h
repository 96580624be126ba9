// The benchmarks of the papers, read from local files in their official formats and scored
// with batched log-likelihoods (eval/batch_score.h), and held-out perplexity.
//
// MultiBLiMP 1.0 (<lang>/data.tsv): tab-separated with a header row, columns found by name:
// `sen` (grammatical) and `wrong_sen` required, `phenomenon` optional ("all" without it),
// `proxy` ("true" marks a generated proxy pair) and `source` optional; others are ignored. Fields may
// be quoted as pandas writes them ("a ""b""" is a "b"). A pair is right when
// log p(sen) > log p(wrong_sen), each summed over the whole sentence conditioned on the start
// token (BOS, else EOS; see start_token_id). acc compares the sums, acc_norm the sums divided
// by the sentence's character count (Unicode code points; the paper's), acc_token_norm the
// sums divided by the token count.
//
// Belebele (<name>.jsonl, the HF fields): `flores_passage`, `question`, `mc_answer1`..`4`
// (strings) and `correct_answer_num` ("1".."4" or 1..4) required; `link`, `dialect`,
// `question_number` optional, `proxy` (true for a generated proxy) optional, others ignored.
// Prompts (context and continuation are tokenized separately):
//   letters (default; the papers' and lm-evaluation-harness's):
//     context  "P: {flores_passage}\nQ: {question}\nA: {mc_answer1}\nB: {mc_answer2}\n"
//              "C: {mc_answer3}\nD: {mc_answer4}\nAnswer:"
//     choices  " A", " B", " C", " D"
//   answers (the answer text scored as the continuation):
//     context  "P: {flores_passage}\nQ: {question}\nA:"
//     choices  " {mc_answer1}" .. " {mc_answer4}"
// k-shot: k other questions of the same file, each as its context followed by its correct
// choice, joined to the question's context by blank lines ("\n\n"): the first k others in file
// order (the papers'), or k drawn with a seed. The prediction is the choice of highest summed
// log-probability (ties: the first); acc_norm divides by the choice's characters,
// acc_token_norm by its tokens (the same as acc for the letters prompt).
//
// A context longer than the model's positions loses tokens on the left (the shots first) and is
// counted as truncated; an item with a sentence or choice that cannot fit at all is left out of
// the accuracies and counted as skipped.
//
// Perplexity: each document tokenized, preceded by the start token, and cut into windows of
// seq_len tokens overlapping by one: every document token is scored once, conditioned on at
// most seq_len - 1 tokens of its own document, until max_tokens are scored.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/batch_score.h"

namespace moegrad::eval {

struct MinimalPair {
  std::string sen, wrong_sen;
  std::string phenomenon = "all";
  std::string source;  // where a proxy pair was made from
  bool proxy = false;
  int64_t line = 0;  // in its file, from 1 (the header)
};

// The pairs of a MultiBLiMP data.tsv. Errors name the file, the line and the column: a missing
// column, a row with the wrong number of fields, an empty file or sentence, an unterminated
// quote, text that is not UTF-8, a file without pairs.
std::vector<MinimalPair> read_multiblimp(const std::string& path);

struct BelebeleItem {
  std::string passage, question;
  std::array<std::string, 4> answers;
  int correct = 0;  // 0..3
  std::string link, dialect;
  bool proxy = false;
  int64_t line = 0;
};

// The questions of a Belebele JSONL file (blank lines skipped). Errors name the file, the line
// and the field: invalid JSON (ill-formed UTF-8 included), a missing or mistyped field, a
// correct_answer_num outside 1..4, a file without questions.
std::vector<BelebeleItem> read_belebele(const std::string& path);

// Counts of right predictions under the three scores.
struct Accuracy {
  int64_t items = 0, correct = 0, correct_norm = 0, correct_token_norm = 0;
  void add(bool right, bool right_norm, bool right_token_norm);
  nlohmann::ordered_json to_json() const;  // items, acc, acc_norm, acc_token_norm
};

struct ScoringOptions {
  BatchScoreOptions batch;  // batch.start_id should be start_token_id(...)
};

struct PairScore {
  ScoredSpan sen, wrong;
  bool skipped = false;  // a sentence does not fit the model's positions
};

struct MultiblimpResult {
  Accuracy all;
  std::map<std::string, Accuracy> phenomena;
  std::vector<PairScore> pairs;  // in file order
  // Pairs left out of the accuracies: a sentence of more tokens than fit after the start token
  // in max_position_embeddings.
  int64_t skipped = 0;
  bool proxy = false;  // every pair is a generated proxy
  // {proxy, items, acc, acc_norm, acc_token_norm, skipped, phenomena: {name: {...}}}
  nlohmann::ordered_json to_json() const;
};

MultiblimpResult score_multiblimp(const OlmoeForCausalLM& model, const data::Tokenizer& tokenizer,
                                  const std::vector<MinimalPair>& pairs, const ScoringOptions& options);

enum class BelebelePrompt { Letters, Answers };
// "letters" or "answers"; anything else is an error naming the choices.
BelebelePrompt parse_belebele_prompt(const std::string& name);
const char* belebele_prompt_name(BelebelePrompt prompt);

struct BelebeleOptions {
  ScoringOptions scoring;
  BelebelePrompt prompt = BelebelePrompt::Letters;
  int64_t shots = 0;
  std::optional<uint64_t> shot_seed;  // none: the first `shots` other questions
};

// The context that precedes item `index`'s choices (its shots included), and its choices.
std::string belebele_context(const std::vector<BelebeleItem>& items, size_t index,
                             const BelebeleOptions& options);
std::array<std::string, 4> belebele_choices(const BelebeleItem& item, BelebelePrompt prompt);

struct BelebeleResult {
  Accuracy accuracy;
  std::vector<std::array<double, 4>> logprobs;  // per question and choice (0 when skipped)
  std::vector<int> predicted;                   // argmax of the sums, 0..3; -1 when skipped
  int64_t truncated = 0;  // questions whose context (shots first) was cut on the left to fit
  int64_t skipped = 0;    // questions with a choice too long to fit at all, left out
  bool proxy = false;
  // {proxy, prompt, shots[, shot_seed], items, acc, acc_norm, acc_token_norm, truncated, skipped}
  nlohmann::ordered_json to_json(const BelebeleOptions& options) const;
};

BelebeleResult score_belebele(const OlmoeForCausalLM& model, const data::Tokenizer& tokenizer,
                              const std::vector<BelebeleItem>& items, const BelebeleOptions& options);

struct PerplexityOptions {
  ScoringOptions scoring;
  int64_t seq_len = 0;           // window length; 0: the model's max_position_embeddings
  int64_t max_tokens = 1 << 20;  // scored tokens at most
};

struct PerplexityResult {
  int64_t seq_len = 0;                           // the window length used
  int64_t documents = 0, tokens = 0, bytes = 0;  // bytes: of the scored tokens
  double nll_sum = 0;                            // nats
  double nll() const { return nll_sum / double(tokens); }
  // {seq_len, documents, tokens, bytes, nll, ppl, bpb}
  nlohmann::ordered_json to_json() const;
};

// Documents from `path` (a folder of .txt files, a .txt file or JSONL, as DocumentSource).
PerplexityResult score_perplexity(const OlmoeForCausalLM& model, const data::Tokenizer& tokenizer,
                                  const std::string& path, const PerplexityOptions& options);

}  // namespace moegrad::eval
