// Proxy benchmarks from held-out pages: prose sentences found in man-page text, minimal pairs
// that swap two adjacent words, next-sentence questions with distractors from other pages, the
// same bytes for the same seed, and files that read back through the benchmark readers.
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "eval/proxy_benchmarks.h"
#include "tests/testing.h"

namespace moegrad::eval {
namespace {

namespace fs = std::filesystem;

const char* const kPage =
    "ls(1)                  User Commands                  ls(1)\n"
    "\n"
    "NAME\n"
    "       ls - list directory contents\n"
    "\n"
    "DESCRIPTION\n"
    "       List information about the files in the current directory.  The\n"
    "       entries are sorted alphabetically by default.  Mandatory arguments\n"
    "       to long options are mandatory for short options too.\n"
    "\n"
    "       Each file is shown on its own line when the output is not a\n"
    "       terminal.  Colors are used e.g. for directories.\n"
    "\n"
    "       -a, --all\n"
    "              do not ignore entries starting with .\n"
    "\n"
    "EXAMPLES\n"
    "       ls -l /tmp; echo done\n";

TEST(ProxyBenchmarks, FindsProseSentencesInManPages) {
  const std::vector<std::vector<std::string>> runs = prose_runs(kPage, ProxyOptions{});
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0], (std::vector<std::string>{
                         "List information about the files in the current directory.",
                         "The entries are sorted alphabetically by default.",
                         "Mandatory arguments to long options are mandatory for short options too.",
                         "Each file is shown on its own line when the output is not a terminal.",
                         "Colors are used e.g. for directories.",
                     }));
  ProxyOptions o;
  o.min_words = 2;
  // Closing quotes stay with their sentence (which, not ending in . ! or ?, is left out); a
  // lower-case letter after a full stop does not start a new one, in Cyrillic too.
  EXPECT_EQ(prose_runs("       Er sagte »Hallo.« Dann ging er nach Hause.\n", o)[0],
            (std::vector<std::string>{"Dann ging er nach Hause."}));
  EXPECT_EQ(prose_runs("       Это файл. и это тоже файл. Конец текста здесь.\n", o)[0],
            (std::vector<std::string>{"Это файл. и это тоже файл.", "Конец текста здесь."}));
  // A code line between two sentences splits the run.
  EXPECT_EQ(
      prose_runs("       First sentence is here.\n\n         x = f(y);\n\n       Second one is here.\n", o)
          .size(),
      2u);
  for (const char* s :
       {"the file is opened here.", "The file is opened here", "See open(2) and close_range(2).",
        "Too short.", "The value 123456789 and 1234 and 5678 end."})
    EXPECT_FALSE(is_prose_sentence(s, ProxyOptions{})) << s;
  EXPECT_TRUE(is_prose_sentence("Élan vital fait des choses étranges.", ProxyOptions{}));
}

// Pages of five sentences each, one topic per page.
std::vector<data::Document> pages() {
  std::vector<data::Document> out;
  const std::vector<std::string> topics = {"cat", "dog", "bird", "fish"};
  for (const std::string& t : topics) {
    std::ostringstream text;
    text << t << "(7)      Misc      " << t << "(7)\n\nDESCRIPTION\n";
    for (int i = 0; i < 5; ++i)
      text << "       The " << t << " number " << i << " likes warm places and quiet evenings.  The small "
           << t << " sleeps " << i + 1 << " hours every single day.\n";
    out.push_back({t + ".7", text.str()});
  }
  return out;
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

TEST(ProxyBenchmarks, MinimalPairsSwapTwoAdjacentWords) {
  ProxyOptions o;
  o.items = 12;
  o.seed = 4;
  const std::vector<MinimalPair> pairs = make_swap_pairs(pages(), "en", o);
  ASSERT_EQ(pairs.size(), 12u);
  std::set<std::string> seen;
  for (const MinimalPair& p : pairs) {
    EXPECT_TRUE(seen.insert(p.sen).second) << "each sentence once: " << p.sen;
    EXPECT_EQ(p.phenomenon, "proxy-adjacent-swap");
    EXPECT_TRUE(p.proxy);
    EXPECT_EQ(p.sen.back(), p.wrong_sen.back());
    // The final punctuation stays last, whichever words move.
    const std::vector<std::string> a = words(p.sen.substr(0, p.sen.size() - 1)),
                                   b = words(p.wrong_sen.substr(0, p.wrong_sen.size() - 1));
    ASSERT_EQ(a.size(), b.size());
    std::vector<size_t> diff;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i] != b[i]) diff.push_back(i);
    ASSERT_EQ(diff.size(), 2u) << p.sen << " / " << p.wrong_sen;
    EXPECT_EQ(diff[1], diff[0] + 1);
    EXPECT_GE(diff[0], 1u);  // the first word stays first
    EXPECT_EQ(a[diff[0]], b[diff[1]]);
    EXPECT_EQ(p.source.substr(p.source.size() - 2), ".7");
  }
  EXPECT_EQ(make_swap_pairs(pages(), "en", o)[3].wrong_sen, pairs[3].wrong_sen);
  ProxyOptions other = o;
  other.seed = 5;
  std::vector<MinimalPair> reseeded = make_swap_pairs(pages(), "en", other);
  EXPECT_FALSE(
      std::equal(pairs.begin(), pairs.end(), reseeded.begin(),
                 [](const MinimalPair& x, const MinimalPair& y) { return x.wrong_sen == y.wrong_sen; }));
}

TEST(ProxyBenchmarks, NextSentenceQuestionsDrawDistractorsFromOtherPages) {
  ProxyOptions o;
  o.items = 20;
  o.passage_sentences = 2;
  const std::vector<data::Document> docs = pages();
  const std::vector<BelebeleItem> items = make_next_sentence_questions(docs, "en", o);
  ASSERT_EQ(items.size(), 20u);
  std::set<int> positions;
  for (const BelebeleItem& q : items) {
    const std::string page = q.link.substr(std::string("proxy:en/").size());
    const std::string topic = page.substr(0, page.find('.'));
    const std::string& answer = q.answers[size_t(q.correct)];
    positions.insert(q.correct);
    EXPECT_EQ(q.question, "Which sentence comes next?");
    EXPECT_TRUE(q.proxy);
    EXPECT_EQ(q.dialect, "en");
    // The passage and the answer are consecutive sentences of the page.
    const auto doc =
        std::find_if(docs.begin(), docs.end(), [&](const data::Document& d) { return d.name == page; });
    ASSERT_NE(doc, docs.end()) << q.link;
    const std::vector<std::vector<std::string>> runs = prose_runs(doc->text, o);
    ASSERT_EQ(runs.size(), 1u);
    std::string text;
    for (const std::string& s : runs[0]) text += (text.empty() ? "" : " ") + s;
    EXPECT_NE(text.find(q.passage + " " + answer), std::string::npos) << q.passage << " / " << answer;
    for (size_t a = 0; a < 4; ++a)
      if (int(a) != q.correct) {
        EXPECT_EQ(q.answers[a].find(" " + topic + " "), std::string::npos) << q.answers[a];
      }
  }
  EXPECT_EQ(positions.size(), 4u);  // the right answer is not always in one place
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

TEST(ProxyBenchmarks, FilesAreDeterministicAndReadBack) {
  const fs::path dir = fs::temp_directory_path() / ("moegrad_proxy_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  for (const char* lang : {"en", "de"}) {
    fs::create_directories(dir / "corpus" / lang);
    for (const data::Document& d : pages()) {
      std::ofstream(dir / "corpus" / lang / (d.name + ".txt")) << d.text;
    }
  }
  const std::map<std::string, std::string> sources = {{"en", (dir / "corpus" / "en").string()},
                                                      {"de", (dir / "corpus" / "de").string()}};
  ProxyOptions o;
  o.items = 8;
  o.seed = 9;
  const auto counts = write_proxy_benchmarks(sources, (dir / "a").string(), o);
  write_proxy_benchmarks(sources, (dir / "b").string(), o);
  EXPECT_EQ(counts.at("en").pages, 4);
  EXPECT_EQ(counts.at("en").pairs, 8);
  EXPECT_EQ(counts.at("de").questions, 8);
  for (const char* f :
       {"proxy_multiblimp/en/data.tsv", "proxy_multiblimp/de/data.tsv", "proxy_belebele/en.jsonl",
        "proxy_belebele/de.jsonl", "proxy_multiblimp/README.md", "proxy_belebele/README.md"}) {
    EXPECT_EQ(slurp(dir / "a" / f), slurp(dir / "b" / f)) << f;
  }
  EXPECT_NE(slurp(dir / "a" / "proxy_multiblimp/README.md").find("PROXY"), std::string::npos);
  EXPECT_NE(slurp(dir / "a" / "proxies.json").find("\"proxy\": true"), std::string::npos);

  // Every field survives the trip through the readers, quotes included.
  const std::vector<MinimalPair> pairs = make_swap_pairs(
      [&] {
        std::vector<data::Document> docs;
        data::DocumentSource src(sources.at("de"));
        for (data::Document d; src.next(d);) docs.push_back(d);
        return docs;
      }(),
      "de", o);
  const std::vector<MinimalPair> read =
      read_multiblimp((dir / "a" / "proxy_multiblimp/de/data.tsv").string());
  ASSERT_EQ(read.size(), pairs.size());
  for (size_t i = 0; i < read.size(); ++i) {
    EXPECT_EQ(read[i].sen, pairs[i].sen);
    EXPECT_EQ(read[i].wrong_sen, pairs[i].wrong_sen);
    EXPECT_EQ(read[i].phenomenon, "proxy-adjacent-swap");
    EXPECT_EQ(read[i].source, pairs[i].source);
    EXPECT_TRUE(read[i].proxy);
  }
  MinimalPair quoted;
  quoted.sen = "Ein \"zitierter\" Satz.";
  quoted.wrong_sen = "Ein Satz \"zitierter\".";
  std::ofstream(dir / "quoted.tsv") << multiblimp_tsv({quoted}, "de");
  EXPECT_EQ(read_multiblimp((dir / "quoted.tsv").string())[0].sen, quoted.sen);
  EXPECT_EQ(read_multiblimp((dir / "quoted.tsv").string())[0].wrong_sen, quoted.wrong_sen);
  const std::vector<BelebeleItem> questions = read_belebele((dir / "a" / "proxy_belebele/en.jsonl").string());
  ASSERT_EQ(questions.size(), 8u);
  for (const BelebeleItem& q : questions) {
    EXPECT_TRUE(q.proxy);
    EXPECT_EQ(q.link.rfind("proxy:en/", 0), 0u);
  }
  ProxyOptions bad = o;
  bad.items = 0;
  testing::expect_error([&] { write_proxy_benchmarks(sources, (dir / "c").string(), bad); },
                        "items must be positive");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moegrad::eval
