// MultiBLiMP and Belebele files read (and refused, naming file, line and field), their prompts,
// accuracies checked against score_tokens called directly, and held-out perplexity.
#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/random.h"
#include "data/bpe_trainer.h"
#include "data/byte_level.h"
#include "eval/benchmarks.h"
#include "eval/score.h"
#include "tests/testing.h"
#include "tests/tiny_olmoe.h"

namespace moegrad::eval {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("moegrad_benchmarks_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return (path / name).string();
  }
};

const std::vector<std::string> kText = {"The cat sits on the mat.", "The cats sit on the mat.",
                                        "Der Hund schläft im Garten.", "A dog sleeps in the garden.",
                                        "Which sentence comes next?"};

data::Tokenizer tokenizer() {
  data::BpeTrainerOptions opts;
  opts.vocab_size = 300;
  opts.special_tokens = {"<|endoftext|>"};
  return data::train_bpe(kText, opts);
}

std::unique_ptr<OlmoeForCausalLM> tiny_model(int64_t vocab, int64_t max_positions = 128) {
  Generator gen(5);
  InitOptions init;
  init.gen = &gen;
  init.std = 0.5;
  return std::make_unique<OlmoeForCausalLM>(testing::tiny_olmoe_config(vocab, 4, 2, max_positions), init);
}

MinimalPair pair(const std::string& sen, const std::string& wrong, const std::string& phenomenon = "all") {
  MinimalPair p;
  p.sen = sen;
  p.wrong_sen = wrong;
  p.phenomenon = phenomenon;
  return p;
}

ScoringOptions scoring(int32_t start) {
  ScoringOptions o;
  o.batch.start_id = start;
  o.batch.max_batch_tokens = 64;
  return o;
}

TEST(Multiblimp, ReadsColumnsByName) {
  TempDir dir;
  // pandas' unnamed index column, columns in another order, a quoted field, CRLF, a blank line.
  const std::string path = dir.write("data.tsv",
                                     "\tlang\twrong_sen\tsen\tphenomenon\r\n"
                                     "0\teng\tThe cats sits.\tThe cats sit.\tSV-#\r\n"
                                     "1\teng\t\"He say \"\"hi\"\".\"\t\"He says \"\"hi\"\".\"\tSV-P\r\n"
                                     "\n"
                                     "2\teng\tThey runs.\tThey run.\t\n");
  const std::vector<MinimalPair> pairs = read_multiblimp(path);
  ASSERT_EQ(pairs.size(), 3u);
  EXPECT_EQ(pairs[0].sen, "The cats sit.");
  EXPECT_EQ(pairs[0].wrong_sen, "The cats sits.");
  EXPECT_EQ(pairs[0].phenomenon, "SV-#");
  EXPECT_EQ(pairs[1].sen, "He says \"hi\".");
  EXPECT_EQ(pairs[1].wrong_sen, "He say \"hi\".");
  EXPECT_EQ(pairs[2].phenomenon, "all");
  EXPECT_EQ(pairs[2].line, 5);
  EXPECT_FALSE(pairs[0].proxy);
}

TEST(Multiblimp, MalformedFilesNameFileLineAndField) {
  TempDir dir;
  auto error = [&](const std::string& text, const std::string& needle) {
    const std::string path = dir.write("data.tsv", text);
    expect_error([&] { read_multiblimp(path); }, needle);
  };
  error("", "data.tsv: empty file; expected a header row");
  error("sen\tphenomenon\nA b.\tX\n", "data.tsv:1: the header has no column 'wrong_sen'");
  error("sen\twrong_sen\tphenomenon\nA b.\tb A.\tX\nA b.\tb A.\n",
        "data.tsv:3: 2 fields, but the header has 3");
  error("sen\twrong_sen\nA \xC3\x28.\tb A.\n",
        "data.tsv:2: field 'sen' is not valid UTF-8 (byte 2 of the field)");
  error("sen\twrong_sen\nA b.\t\"b A.\n", "data.tsv:2: field 'wrong_sen': unterminated quote");
  error("sen\twrong_sen\n\tb A.\n", "data.tsv:2: field 'sen' is empty");
  error("sen\twrong_sen\tsen\n", "data.tsv:1: column 'sen' appears twice");
  error("sen\twrong_sen\n\n", "data.tsv: no minimal pairs after the header");
  error("sen\twrong_sen\tproxy\nA b.\tb A.\tyes\n",
        "data.tsv:2: field 'proxy': expected true or false, found 'yes'");
  expect_error([&] { read_multiblimp((dir.path / "missing.tsv").string()); }, "missing.tsv: cannot open");
}

TEST(Multiblimp, AccuraciesFollowScoreTokens) {
  const data::Tokenizer tok = tokenizer();
  auto model = tiny_model(tok.vocab_size());
  const std::vector<MinimalPair> pairs = {
      pair("The cat sits on the mat.", "The cat sit on the mat.", "SV-#"),
      pair("The cats sit on the mat.", "The cats sits on the mat.", "SV-#"),
      pair("A dog sleeps in the garden.", "A dog sleep in the garden.", "SV-P"),
      pair("Der Hund schläft im Garten.", "Der Hund schlafen im Garten.", "SV-P"),
      pair("The mat.", "Mat the.", "order"),
  };
  const MultiblimpResult r = score_multiblimp(*model, tok, pairs, scoring(0));
  std::map<std::string, Accuracy> want;
  Accuracy all;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const ScoreResult good = score_tokens(*model, {0}, tok.encode(pairs[i].sen));
    const ScoreResult bad = score_tokens(*model, {0}, tok.encode(pairs[i].wrong_sen));
    EXPECT_NEAR(r.pairs[i].sen.logprob, good.logprob, 1e-5 * std::fabs(good.logprob));
    EXPECT_NEAR(r.pairs[i].wrong.logprob, bad.logprob, 1e-5 * std::fabs(bad.logprob));
    const double chars_good = double(data::utf8_decode(pairs[i].sen).size());
    const double chars_bad = double(data::utf8_decode(pairs[i].wrong_sen).size());
    const bool right = good.logprob > bad.logprob;
    const bool right_norm = good.logprob / chars_good > bad.logprob / chars_bad;
    const bool right_token_norm =
        good.logprob / double(good.tokens.size()) > bad.logprob / double(bad.tokens.size());
    all.add(right, right_norm, right_token_norm);
    want[pairs[i].phenomenon].add(right, right_norm, right_token_norm);
  }
  EXPECT_EQ(r.all.to_json(), all.to_json());
  ASSERT_EQ(r.phenomena.size(), 3u);
  for (const auto& [name, acc] : want) EXPECT_EQ(r.phenomena.at(name).to_json(), acc.to_json()) << name;
  EXPECT_FALSE(r.proxy);
  const nlohmann::ordered_json j = r.to_json();
  EXPECT_EQ(j["items"], 5);
  EXPECT_EQ(j["phenomena"]["order"]["items"], 1);
}

TEST(Benchmarks, ItemsLongerThanThePositionsAreSkipped) {
  const data::Tokenizer tok = tokenizer();
  auto model = tiny_model(tok.vocab_size(), 8);
  const std::string long_text = kText[0] + " " + kText[1];
  ASSERT_LT(tok.encode("The cat.").size(), 8u);
  ASSERT_GE(tok.encode(" " + long_text).size(), 8u);
  const MultiblimpResult m =
      score_multiblimp(*model, tok, {pair("The cat.", "Cat the."), pair(long_text, "x")}, scoring(0));
  EXPECT_EQ(m.all.items, 1);
  EXPECT_EQ(m.skipped, 1);
  EXPECT_TRUE(m.pairs[1].skipped);
  EXPECT_FALSE(m.pairs[0].skipped);

  model = tiny_model(tok.vocab_size(), 16);
  const std::string longer = long_text + " " + long_text + " " + long_text;
  ASSERT_GE(tok.encode(" " + longer).size(), 16u);
  BelebeleItem q;
  q.passage = longer;  // cut on the left to fit
  q.question = "Where?";
  q.answers = {"The cat.", "The mat.", "A dog.", "The dog."};
  BelebeleItem too_long = q;
  too_long.answers[2] = longer;
  BelebeleOptions o;
  o.scoring = scoring(0);
  o.prompt = BelebelePrompt::Answers;
  const BelebeleResult b = score_belebele(*model, tok, {q, too_long}, o);
  EXPECT_EQ(b.accuracy.items, 1);
  EXPECT_EQ(b.truncated, 1);
  EXPECT_EQ(b.skipped, 1);
  EXPECT_EQ(b.predicted[1], -1);
}

const char* const kBelebele =
    R"({"link": "l0", "question_number": 1, "flores_passage": "The cat sits on the mat.", "question": "Where is the cat?", "mc_answer1": "On the mat.", "mc_answer2": "In the garden.", "mc_answer3": "Der Garten.", "mc_answer4": "Nowhere.", "correct_answer_num": "1", "dialect": "eng_Latn"})"
    "\n\n"
    R"({"flores_passage": "A dog sleeps in the garden.", "question": "Where does the dog sleep?", "mc_answer1": "On the mat.", "mc_answer2": "In the garden.", "mc_answer3": "The cat.", "mc_answer4": "Nowhere.", "correct_answer_num": 2, "extra": 1})"
    "\n"
    R"({"flores_passage": "Der Hund schläft im Garten.", "question": "Wo?", "mc_answer1": "Im Garten.", "mc_answer2": "Auf der Matte.", "mc_answer3": "Nein.", "mc_answer4": "Ja.", "correct_answer_num": "1", "proxy": true})"
    "\n";

TEST(Belebele, ReadsTheHfFields) {
  TempDir dir;
  const std::vector<BelebeleItem> items = read_belebele(dir.write("eng_Latn.jsonl", kBelebele));
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].passage, "The cat sits on the mat.");
  EXPECT_EQ(items[0].answers[3], "Nowhere.");
  EXPECT_EQ(items[0].correct, 0);
  EXPECT_EQ(items[0].link, "l0");
  EXPECT_EQ(items[0].dialect, "eng_Latn");
  EXPECT_EQ(items[1].correct, 1);  // an integer correct_answer_num
  EXPECT_EQ(items[1].line, 3);
  EXPECT_TRUE(items[2].proxy);
}

TEST(Belebele, MalformedFilesNameFileLineAndField) {
  TempDir dir;
  auto error = [&](const std::string& line2, const std::string& needle) {
    const std::string first = std::string(kBelebele).substr(0, std::string(kBelebele).find('\n') + 1);
    const std::string path = dir.write("x.jsonl", first + line2 + "\n");
    expect_error([&] { read_belebele(path); }, needle);
  };
  const std::string ok =
      R"("flores_passage": "p", "question": "q", "mc_answer1": "a", "mc_answer2": "b", "mc_answer3": "c", "mc_answer4": "d")";
  error("{" + ok + ", \"correct_answer_num\": \"5\"}",
        "x.jsonl:2: field \"correct_answer_num\" must be 1, 2, 3 or 4");
  error("{" + ok + "}", "x.jsonl:2: missing field \"correct_answer_num\"");
  error(R"({"flores_passage": "p", "question": 7})",
        "x.jsonl:2: field \"question\" must be a string, found 7");
  error(R"({"flores_passage": "p", "question": "q"})", "x.jsonl:2: missing field \"mc_answer1\"");
  error("{" + ok + ", \"correct_answer_num\": 1, \"proxy\": \"yes\"}",
        "x.jsonl:2: field \"proxy\" must be true or false");
  error("{\"flores_passage\": \"\xC3\x28\"}", "x.jsonl:2: invalid JSON");
  error("[1, 2]", "x.jsonl:2: expected an object");
  const std::string empty = dir.write("empty.jsonl", "\n");
  expect_error([&] { read_belebele(empty); }, "empty.jsonl: no questions");
}

TEST(Belebele, PromptsAndShots) {
  TempDir dir;
  const std::vector<BelebeleItem> items = read_belebele(dir.write("b.jsonl", kBelebele));
  BelebeleOptions o;
  EXPECT_EQ(belebele_context(items, 0, o),
            "P: The cat sits on the mat.\nQ: Where is the cat?\nA: On the mat.\nB: In the garden.\n"
            "C: Der Garten.\nD: Nowhere.\nAnswer:");
  EXPECT_EQ(belebele_choices(items[0], o.prompt), (std::array<std::string, 4>{" A", " B", " C", " D"}));
  o.prompt = BelebelePrompt::Answers;
  EXPECT_EQ(belebele_context(items, 2, o), "P: Der Hund schläft im Garten.\nQ: Wo?\nA:");
  EXPECT_EQ(belebele_choices(items[2], o.prompt)[0], " Im Garten.");
  // k-shot: the first other questions with their answers, then the question.
  o.shots = 1;
  EXPECT_EQ(belebele_context(items, 0, o),
            "P: A dog sleeps in the garden.\nQ: Where does the dog sleep?\nA: In the garden.\n\n"
            "P: The cat sits on the mat.\nQ: Where is the cat?\nA:");
  o.prompt = BelebelePrompt::Letters;
  EXPECT_EQ(belebele_context(items, 1, o).substr(0, 30), "P: The cat sits on the mat.\nQ:");
  EXPECT_NE(belebele_context(items, 1, o).find("Answer: A\n\nP: A dog"), std::string::npos);
  // Seeded shots: never the question itself, the same for the same seed.
  o.shots = 2;
  o.shot_seed = 11;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string c = belebele_context(items, i, o);
    EXPECT_EQ(c, belebele_context(items, i, o));
    EXPECT_EQ(c.find("P: " + items[i].passage), c.rfind("P: " + items[i].passage)) << c;
  }
  o.shots = 3;
  expect_error([&] { belebele_context(items, 0, o); },
               "Belebele 3-shot needs 4 questions in the file; it has 3");
  expect_error([&] { parse_belebele_prompt("mc"); }, "expected letters or answers");
}

TEST(Belebele, PredictionsFollowScoreTokens) {
  TempDir dir;
  const std::vector<BelebeleItem> items = read_belebele(dir.write("b.jsonl", kBelebele));
  const data::Tokenizer tok = tokenizer();
  auto model = tiny_model(tok.vocab_size(), 512);  // the 1-shot prompts fit, uncut
  for (BelebelePrompt prompt : {BelebelePrompt::Letters, BelebelePrompt::Answers}) {
    BelebeleOptions o;
    o.scoring = scoring(0);
    o.prompt = prompt;
    o.shots = 1;
    const BelebeleResult r = score_belebele(*model, tok, items, o);
    Accuracy want;
    for (size_t i = 0; i < items.size(); ++i) {
      const std::vector<int32_t> context = tok.encode(belebele_context(items, i, o));
      std::array<double, 4> lp, per_char, per_token;
      for (size_t a = 0; a < 4; ++a) {
        const std::string choice = belebele_choices(items[i], prompt)[a];
        const ScoreResult s = score_tokens(*model, context, tok.encode(choice));
        EXPECT_NEAR(r.logprobs[i][a], s.logprob, 1e-5 * std::fabs(s.logprob)) << i << " " << a;
        lp[a] = s.logprob;
        per_char[a] = s.logprob / double(data::utf8_decode(choice).size());
        per_token[a] = s.logprob / double(s.tokens.size());
      }
      auto argmax = [](const std::array<double, 4>& v) {
        return int(std::max_element(v.begin(), v.end()) - v.begin());
      };
      EXPECT_EQ(r.predicted[i], argmax(lp));
      want.add(argmax(lp) == items[i].correct, argmax(per_char) == items[i].correct,
               argmax(per_token) == items[i].correct);
    }
    EXPECT_EQ(r.accuracy.to_json(), want.to_json());
    EXPECT_EQ(r.truncated, 0);
    EXPECT_FALSE(r.proxy);  // only one of the three is marked proxy
    EXPECT_EQ(r.to_json(o)["shot_seed"], "first");
  }
}

TEST(Perplexity, ScoresEveryTokenOnceWithinItsDocument) {
  TempDir dir;
  fs::create_directories(dir.path / "docs");
  dir.write("docs/a.txt", kText[0] + " " + kText[1]);
  dir.write("docs/b.txt", kText[3]);
  dir.write("docs/c.txt", "  \n");  // skipped
  const data::Tokenizer tok = tokenizer();
  auto model = tiny_model(tok.vocab_size(), 64);
  const std::vector<int32_t> a = tok.encode(kText[0] + " " + kText[1]), b = tok.encode(kText[3]);
  PerplexityOptions o;
  o.scoring = scoring(0);
  // Windows as long as the documents: one per document, conditioned on the start token.
  const PerplexityResult whole = score_perplexity(*model, tok, (dir.path / "docs").string(), o);
  const double nll = -score_tokens(*model, {0}, a).logprob - score_tokens(*model, {0}, b).logprob;
  EXPECT_EQ(whole.documents, 2);
  EXPECT_EQ(whole.tokens, int64_t(a.size() + b.size()));
  EXPECT_EQ(whole.bytes, int64_t(kText[0].size() + 1 + kText[1].size() + kText[3].size()));
  EXPECT_NEAR(whole.nll_sum, nll, 1e-5 * nll);
  const nlohmann::ordered_json j = whole.to_json();
  // From the run's own sum: nll above agrees with it only to the 1e-5 of batched scoring.
  EXPECT_NEAR(j["ppl"].get<double>(), std::exp(whole.nll_sum / double(whole.tokens)),
              1e-9 * j["ppl"].get<double>());
  EXPECT_NEAR(j["bpb"].get<double>(), whole.nll_sum / std::log(2.0) / double(whole.bytes), 1e-12);

  // Windows of 4 positions: 3 tokens scored each, conditioned on the token before them.
  o.seq_len = 4;
  const PerplexityResult windows = score_perplexity(*model, tok, (dir.path / "docs").string(), o);
  EXPECT_EQ(windows.tokens, whole.tokens);
  double want = -score_tokens(*model, {0}, {a[0], a[1], a[2]}).logprob -
                score_tokens(*model, {a[2]}, {a[3], a[4], a[5]}).logprob;
  o.max_tokens = 6;
  const PerplexityResult capped = score_perplexity(*model, tok, (dir.path / "docs").string(), o);
  EXPECT_EQ(capped.tokens, 6);
  EXPECT_EQ(capped.documents, 1);
  EXPECT_NEAR(capped.nll_sum, want, 1e-5 * want);
  o.seq_len = 65;
  expect_error([&] { score_perplexity(*model, tok, (dir.path / "docs").string(), o); },
               "windows of 65 tokens: must be from 2 to the model's max_position_embeddings, 64");
}

}  // namespace
}  // namespace moegrad::eval
