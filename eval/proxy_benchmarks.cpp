#include "eval/proxy_benchmarks.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <random>
#include <set>
#include <string_view>

#include "core/error.h"
#include "core/io/atomic_file.h"
#include "data/byte_level.h"

namespace moegrad::eval {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

const char* const kPhenomenon = "proxy-adjacent-swap";
const char* const kQuestion = "Which sentence comes next?";

// Letter case for the Latin, Greek and Cyrillic letters of the corpus' languages; scripts
// without case count as not lower-case, which is what the sentence splitter needs.
bool is_lower(char32_t c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 0xDF && c <= 0xFF) return c != 0xF7;
  if (c >= 0x100 && c <= 0x137) return c % 2 == 1;
  if (c >= 0x139 && c <= 0x148) return c % 2 == 0;
  if (c >= 0x14A && c <= 0x177) return c % 2 == 1;
  if (c >= 0x179 && c <= 0x17E) return c % 2 == 0;
  if (c == 0x17F || (c >= 0x180 && c <= 0x24F && c % 2 == 1)) return true;
  if (c >= 0x3AC && c <= 0x3CE) return true;
  if (c >= 0x430 && c <= 0x45F) return true;
  return c >= 0x460 && c <= 0x4FF && c % 2 == 1;
}

bool is_letter(char32_t c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  if (c >= 0xC0 && c < 0x2000) return c != 0xD7 && c != 0xF7;
  return (c >= 0x3040 && c < 0xFF00) || c >= 0x10000;
}

// The first code point of valid UTF-8 `s` (0 when empty).
char32_t first_code_point(std::string_view s) {
  if (s.empty()) return 0;
  const unsigned char lead = s[0];
  const size_t n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
  return data::utf8_decode(s.substr(0, n))[0];
}

// Closing quotes and brackets that may follow a sentence's final punctuation.
size_t closing_length(std::string_view s) {
  for (std::string_view c : {")", "\"", "'", "\xC2\xBB" /* » */, "\xC2\xAB" /* « */, "\xE2\x80\x9C" /* “ */,
                             "\xE2\x80\x9D" /* ” */, "\xE2\x80\x99" /* ’ */})
    if (s.substr(0, c.size()) == c) return c.size();
  return 0;
}

std::vector<std::string> split_sentences(const std::string& paragraph) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < paragraph.size(); ++i) {
    if (paragraph[i] != '.' && paragraph[i] != '!' && paragraph[i] != '?') continue;
    size_t j = i + 1;
    while (size_t n = closing_length(std::string_view(paragraph).substr(j))) j += n;
    if (j + 1 >= paragraph.size() || paragraph[j] != ' ' ||
        is_lower(first_code_point(std::string_view(paragraph).substr(j + 1))))
      continue;
    out.push_back(paragraph.substr(start, j - start));
    start = j + 1;
    i = j;
  }
  if (start < paragraph.size()) out.push_back(paragraph.substr(start));
  return out;
}

// Paragraphs: blank lines and changes of indentation separate them; lines joined by one space.
std::vector<std::string> paragraphs(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  size_t indent = std::string::npos;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = std::min(text.find('\n', begin), text.size());
    std::string_view line = std::string_view(text).substr(begin, end - begin);
    begin = end + 1;
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || first != indent) {
      if (!current.empty()) out.push_back(std::move(current));
      current.clear();
      indent = first;
      if (first == std::string_view::npos) continue;
    }
    // Collapse every run of whitespace into one space.
    for (char c : line.substr(first)) {
      const bool space = c == ' ' || c == '\t' || c == '\r';
      if (!space)
        current += c;
      else if (!current.empty() && current.back() != ' ')
        current += ' ';
    }
    if (!current.empty() && current.back() != ' ') current += ' ';
  }
  if (!current.empty()) out.push_back(std::move(current));
  for (std::string& p : out)
    while (!p.empty() && p.back() == ' ') p.pop_back();
  return out;
}

std::vector<std::string> words_of(const std::string& s) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= s.size()) {
    const size_t end = std::min(s.find(' ', begin), s.size());
    if (end > begin) out.push_back(s.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

// Letters, with - and ' allowed inside.
bool is_plain_word(const std::string& w) {
  const std::u32string cps = data::utf8_decode(w);
  for (size_t i = 0; i < cps.size(); ++i) {
    const bool inner = i > 0 && i + 1 < cps.size();
    if (!is_letter(cps[i]) && !(inner && (cps[i] == '-' || cps[i] == '\'' || cps[i] == 0x2019))) return false;
  }
  return !cps.empty();
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// One stream per (seed, language, benchmark). Draws use raw 64-bit outputs (rng() % n), which
// the standard fixes, not std::uniform_int_distribution, which it does not.
std::mt19937_64 stream(uint64_t seed, const std::string& language, const char* benchmark) {
  return std::mt19937_64(seed ^ fnv1a(language + "/" + benchmark));
}

template <typename T>
void shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

struct Sentence {
  std::string text;
  size_t page;
};

// Every prose sentence of the pages once (its first occurrence), in page order.
std::vector<Sentence> unique_sentences(const std::vector<std::vector<std::vector<std::string>>>& runs) {
  std::vector<Sentence> out;
  std::set<std::string> seen;
  for (size_t p = 0; p < runs.size(); ++p)
    for (const auto& run : runs[p])
      for (const std::string& s : run)
        if (seen.insert(s).second) out.push_back({s, p});
  return out;
}

std::vector<std::vector<std::vector<std::string>>> runs_of(const std::vector<data::Document>& pages,
                                                           const ProxyOptions& options) {
  std::vector<std::vector<std::vector<std::string>>> runs;
  for (const data::Document& d : pages) runs.push_back(prose_runs(d.text, options));
  return runs;
}

std::optional<std::string> swap_adjacent(const std::string& sentence, std::mt19937_64& rng) {
  const char terminal = sentence.back();
  std::vector<std::string> w = words_of(sentence.substr(0, sentence.size() - 1));
  std::vector<size_t> eligible;
  for (size_t i = 1; i + 1 < w.size(); ++i)
    if (w[i] != w[i + 1] && is_plain_word(w[i]) && is_plain_word(w[i + 1])) eligible.push_back(i);
  if (eligible.empty()) return std::nullopt;
  const size_t i = eligible[rng() % eligible.size()];
  std::swap(w[i], w[i + 1]);
  std::string out;
  for (const std::string& x : w) out += (out.empty() ? "" : " ") + x;
  return out + terminal;
}

std::string tsv_field(const std::string& s) {
  if (s.find_first_of("\"\t\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

void check_options(const ProxyOptions& o) {
  MOEGRAD_CHECK(o.items >= 1, "proxy benchmarks: items must be positive, got ", o.items);
  MOEGRAD_CHECK(o.passage_sentences >= 1, "proxy benchmarks: passage_sentences must be positive, got ",
                o.passage_sentences);
  MOEGRAD_CHECK(o.min_words >= 3 && o.min_words <= o.max_words, "proxy benchmarks: words per sentence from ",
                o.min_words, " to ", o.max_words,
                ": need 3 <= min_words <= max_words (a swap needs two words after the first)");
}

}  // namespace

bool is_prose_sentence(const std::string& sentence, const ProxyOptions& options) {
  if (sentence.empty()) return false;
  const char last = sentence.back();
  if (last != '.' && last != '!' && last != '?') return false;
  if (sentence.find_first_of("{}[]<>=;|\\_#*$&@~^`/") != std::string::npos) return false;
  const int64_t words = int64_t(words_of(sentence).size());
  if (words < options.min_words || words > options.max_words) return false;
  const std::u32string cps = data::utf8_decode(sentence);
  if (!is_letter(cps[0]) || is_lower(cps[0])) return false;
  int64_t letters = 0, others = 0;
  for (char32_t c : cps) {
    if (c == ' ') continue;
    (is_letter(c) ? letters : others) += 1;
  }
  return letters >= 3 * others;  // at least 75% letters
}

std::vector<std::vector<std::string>> prose_runs(const std::string& text, const ProxyOptions& options) {
  std::vector<std::vector<std::string>> runs(1);
  for (const std::string& p : paragraphs(text)) {
    for (std::string& s : split_sentences(p)) {
      if (is_prose_sentence(s, options))
        runs.back().push_back(std::move(s));
      else if (!runs.back().empty())
        runs.emplace_back();
    }
  }
  if (runs.back().empty()) runs.pop_back();
  return runs;
}

std::vector<MinimalPair> make_swap_pairs(const std::vector<data::Document>& pages,
                                         const std::string& language, const ProxyOptions& options) {
  check_options(options);
  std::vector<Sentence> sentences = unique_sentences(runs_of(pages, options));
  std::mt19937_64 rng = stream(options.seed, language, "multiblimp");
  shuffle(sentences, rng);
  std::vector<MinimalPair> pairs;
  for (const Sentence& s : sentences) {
    if (int64_t(pairs.size()) == options.items) break;
    std::optional<std::string> wrong = swap_adjacent(s.text, rng);
    if (!wrong) continue;
    MinimalPair p;
    p.sen = s.text;
    p.wrong_sen = *wrong;
    p.phenomenon = kPhenomenon;
    p.source = pages[s.page].name;
    p.proxy = true;
    pairs.push_back(std::move(p));
  }
  return pairs;
}

std::vector<BelebeleItem> make_next_sentence_questions(const std::vector<data::Document>& pages,
                                                       const std::string& language,
                                                       const ProxyOptions& options) {
  check_options(options);
  const auto runs = runs_of(pages, options);
  const std::vector<Sentence> pool = unique_sentences(runs);
  struct Span {
    size_t page, run, start;
  };
  const size_t k = size_t(options.passage_sentences);
  std::vector<Span> spans;
  for (size_t p = 0; p < runs.size(); ++p)
    for (size_t r = 0; r < runs[p].size(); ++r)
      for (size_t s = 0; s + k < runs[p][r].size(); ++s) spans.push_back({p, r, s});
  std::mt19937_64 rng = stream(options.seed, language, "belebele");
  shuffle(spans, rng);

  std::vector<BelebeleItem> items;
  std::set<std::string> used_answers;
  for (const Span& span : spans) {
    if (int64_t(items.size()) == options.items) break;
    const std::vector<std::string>& run = runs[span.page][span.run];
    const std::string& answer = run[span.start + k];
    if (used_answers.count(answer)) continue;
    const std::vector<std::string> passage(run.begin() + int64_t(span.start),
                                           run.begin() + int64_t(span.start + k));
    // Distractors: other pages' sentences, the closest in length to the answer among the draws.
    std::vector<std::string> drawn;
    for (int draw = 0; draw < 64 && !pool.empty(); ++draw) {
      const Sentence& c = pool[rng() % pool.size()];
      if (c.page == span.page || c.text == answer ||
          std::find(drawn.begin(), drawn.end(), c.text) != drawn.end() ||
          std::find(passage.begin(), passage.end(), c.text) != passage.end())
        continue;
      drawn.push_back(c.text);
    }
    if (drawn.size() < 3) continue;
    const int64_t length = int64_t(answer.size());
    std::stable_sort(drawn.begin(), drawn.end(), [&](const std::string& a, const std::string& b) {
      return std::llabs(int64_t(a.size()) - length) < std::llabs(int64_t(b.size()) - length);
    });
    BelebeleItem item;
    item.correct = int(rng() % 4);
    for (size_t a = 0, d = 0; a < 4; ++a) item.answers[a] = int(a) == item.correct ? answer : drawn[d++];
    for (const std::string& s : passage) item.passage += (item.passage.empty() ? "" : " ") + s;
    item.question = kQuestion;
    item.link = "proxy:" + language + "/" + pages[span.page].name;
    item.dialect = language;
    item.proxy = true;
    used_answers.insert(answer);
    items.push_back(std::move(item));
  }
  return items;
}

std::string multiblimp_tsv(const std::vector<MinimalPair>& pairs, const std::string& language) {
  std::string out = "sen\twrong_sen\tphenomenon\tlang\tsource\tproxy\n";
  for (const MinimalPair& p : pairs)
    out += tsv_field(p.sen) + "\t" + tsv_field(p.wrong_sen) + "\t" + tsv_field(p.phenomenon) + "\t" +
           tsv_field(language) + "\t" + tsv_field(p.source) + "\t" + (p.proxy ? "true" : "false") + "\n";
  return out;
}

std::string belebele_jsonl(const std::vector<BelebeleItem>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    const BelebeleItem& q = items[i];
    ordered_json j = {{"link", q.link},
                      {"question_number", i + 1},
                      {"flores_passage", q.passage},
                      {"question", q.question},
                      {"mc_answer1", q.answers[0]},
                      {"mc_answer2", q.answers[1]},
                      {"mc_answer3", q.answers[2]},
                      {"mc_answer4", q.answers[3]},
                      {"correct_answer_num", std::to_string(q.correct + 1)},
                      {"dialect", q.dialect},
                      {"proxy", q.proxy}};
    out += j.dump() + "\n";
  }
  return out;
}

std::map<std::string, ProxyCounts> write_proxy_benchmarks(const std::map<std::string, std::string>& sources,
                                                          const std::string& out_dir,
                                                          const ProxyOptions& options) {
  check_options(options);
  const fs::path out(out_dir);
  std::map<std::string, ProxyCounts> counts;
  ordered_json languages = ordered_json::object();
  for (const auto& [language, path] : sources) {
    std::vector<data::Document> pages;
    data::DocumentSource source(path);
    for (data::Document d; source.next(d);) pages.push_back(d);
    const std::vector<MinimalPair> pairs = make_swap_pairs(pages, language, options);
    const std::vector<BelebeleItem> questions = make_next_sentence_questions(pages, language, options);
    ProxyCounts& c = counts[language];
    c.pages = int64_t(pages.size());
    c.sentences = int64_t(unique_sentences(runs_of(pages, options)).size());
    c.pairs = int64_t(pairs.size());
    c.questions = int64_t(questions.size());
    fs::create_directories(out / "proxy_multiblimp" / language);
    fs::create_directories(out / "proxy_belebele");
    write_file_atomically((out / "proxy_multiblimp" / language / "data.tsv").string(),
                          multiblimp_tsv(pairs, language));
    write_file_atomically((out / "proxy_belebele" / (language + ".jsonl")).string(),
                          belebele_jsonl(questions));
    languages[language] = {{"source", path},
                           {"pages", c.pages},
                           {"prose_sentences", c.sentences},
                           {"pairs", c.pairs},
                           {"questions", c.questions}};
  }
  const std::string settings = "seed " + std::to_string(options.seed) + ", at most " +
                               std::to_string(options.items) + " items per language";
  write_file_atomically(
      (out / "proxy_multiblimp" / "README.md").string(),
      "# PROXY minimal pairs (not MultiBLiMP)\n\n"
      "Generated by `moegrad benchmark proxies` from held-out documents (" +
          settings +
          "; sources "
          "and counts in ../proxies.json). Each row of `<lang>/data.tsv` is a prose sentence of a "
          "held-out page (`sen`) and the same sentence with two adjacent words swapped (`wrong_sen`), "
          "phenomenon `proxy-adjacent-swap`, `proxy` = true. The file has MultiBLiMP 1.0's format so "
          "that the same reader and scorer run offline; it tests word order, not agreement, and its "
          "accuracies are not MultiBLiMP results.\n");
  write_file_atomically(
      (out / "proxy_belebele" / "README.md").string(),
      "# PROXY reading questions (not Belebele)\n\n"
      "Generated by `moegrad benchmark proxies` from held-out documents (" +
          settings +
          ", passages "
          "of " +
          std::to_string(options.passage_sentences) +
          " sentences; sources and counts in "
          "../proxies.json). Each line of `<lang>.jsonl` has Belebele's fields: the passage is "
          "consecutive sentences of a held-out page, the question \"" +
          kQuestion +
          "\", the choices "
          "the true next sentence and three sentences of other pages of the same language, and "
          "\"proxy\": true. Its accuracies are not Belebele results.\n");
  ordered_json summary = {{"proxy", true},
                          {"generator", "moegrad benchmark proxies"},
                          {"seed", options.seed},
                          {"items", options.items},
                          {"passage_sentences", options.passage_sentences},
                          {"min_words", options.min_words},
                          {"max_words", options.max_words},
                          {"languages", languages}};
  write_file_atomically((out / "proxies.json").string(), summary.dump(1) + "\n");
  return counts;
}

}  // namespace moegrad::eval
