// PROXY benchmarks made from held-out text, in the file formats of MultiBLiMP and Belebele, so
// that the evaluation pipeline runs offline on the embedded corpus, which has neither. They
// measure something related (word order; which sentence continues a passage), not what the
// real benchmarks measure: their files say "proxy" in their paths, rows and READMEs, and
// their numbers must never be reported as MultiBLiMP or Belebele.
//
// Sentences: a page is cut into paragraphs at blank lines and wherever the indentation changes
// (so headings and code blocks stand apart from the body text of a man page), a paragraph's
// lines are joined with single spaces and cut into sentences after . ! or ? (and any closing
// quotes or bracket) followed by a space and a character that is not a lower-case letter.
// A sentence is prose when it has min_words..max_words words, starts with a letter that is not
// lower-case, ends with . ! or ?, holds none of {}[]<>=;|\_#*$&@~^`/ and at least 75% of its
// other characters are letters. A run is a maximal sequence of consecutive prose sentences.
//
// Minimal pairs (phenomenon "proxy-adjacent-swap"): prose sentences, each once, in a seeded
// order; `wrong_sen` swaps two adjacent words, seeded among the pairs of different words made
// only of letters (inner - and ' allowed) that leave the first word and the final punctuation
// in place; sentences with no such pair are skipped.
//
// Next-sentence questions: passage = passage_sentences consecutive sentences of a run,
// question "Which sentence comes next?", choices = the run's next sentence and 3 prose
// sentences of other pages of the same language (the closest in length among up to 64 seeded
// draws, so length gives little away), in a seeded order. Spans are taken in a seeded order,
// each answer sentence once.
//
// The same pages, options and seed give byte-identical files; each language draws from its
// own stream, so adding a language changes no other language's items.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/document_source.h"
#include "eval/benchmarks.h"

namespace moegrad::eval {

struct ProxyOptions {
  int64_t items = 200;  // per language and benchmark, at most
  uint64_t seed = 0;
  int64_t passage_sentences = 3;
  int64_t min_words = 5, max_words = 40;
};

// The runs of consecutive prose sentences of a page's text, in order.
std::vector<std::vector<std::string>> prose_runs(const std::string& text, const ProxyOptions& options);
bool is_prose_sentence(const std::string& sentence, const ProxyOptions& options);

// Pairs with phenomenon "proxy-adjacent-swap", source = the page's name, proxy = true.
std::vector<MinimalPair> make_swap_pairs(const std::vector<data::Document>& pages,
                                         const std::string& language, const ProxyOptions& options);
// Questions with link "proxy:<language>/<page>", dialect = language, proxy = true.
std::vector<BelebeleItem> make_next_sentence_questions(const std::vector<data::Document>& pages,
                                                       const std::string& language,
                                                       const ProxyOptions& options);

// The files' text: a data.tsv with columns sen, wrong_sen, phenomenon, lang, source, proxy
// (fields quoted as pandas does when they hold a quote); a JSONL line per question with the
// Belebele fields (correct_answer_num a string, question_number from 1) and "proxy": true.
std::string multiblimp_tsv(const std::vector<MinimalPair>& pairs, const std::string& language);
std::string belebele_jsonl(const std::vector<BelebeleItem>& items);

struct ProxyCounts {
  int64_t pages = 0, sentences = 0, pairs = 0, questions = 0;
};

// For each language, the documents of its path (as DocumentSource reads them) become
// <out>/proxy_multiblimp/<language>/data.tsv and <out>/proxy_belebele/<language>.jsonl; a
// README.md beside each set says what it is, and <out>/proxies.json lists the options, the
// sources and the counts. Files are written atomically.
std::map<std::string, ProxyCounts> write_proxy_benchmarks(const std::map<std::string, std::string>& sources,
                                                          const std::string& out_dir,
                                                          const ProxyOptions& options);

}  // namespace moegrad::eval
