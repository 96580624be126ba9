#include "eval/benchmarks.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"
#include "data/byte_level.h"
#include "data/document_source.h"

namespace moegrad::eval {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MOEGRAD_CHECK(in.good(), path, ": cannot open");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// The lines of a file without their "\r\n" / "\n", numbered from 1.
std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(begin, end - begin);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    begin = end + 1;
  }
  return lines;
}

std::string column_name(const std::vector<std::string>& header, size_t i) {
  if (i < header.size() && !header[i].empty()) return "'" + header[i] + "'";
  return "column " + std::to_string(i + 1);
}

// One TSV row; a field that starts with a quote runs to the closing quote, "" standing for ".
std::vector<std::string> split_tsv(const std::string& line, const std::string& where,
                                   const std::vector<std::string>& header) {
  std::vector<std::string> fields;
  size_t i = 0;
  while (true) {
    std::string field;
    if (i < line.size() && line[i] == '"') {
      for (++i;; ++i) {
        MOEGRAD_CHECK(i < line.size(), where, ": field ", column_name(header, fields.size()),
                      ": unterminated quote");
        if (line[i] != '"') {
          field += line[i];
        } else if (i + 1 < line.size() && line[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          ++i;
          break;
        }
      }
      MOEGRAD_CHECK(i == line.size() || line[i] == '\t', where, ": field ",
                    column_name(header, fields.size()), ": text after its closing quote");
    } else {
      const size_t end = std::min(line.find('\t', i), line.size());
      field = line.substr(i, end - i);
      i = end;
    }
    const size_t bad = data::utf8_invalid_at(field);
    MOEGRAD_CHECK(bad == std::string::npos, where, ": field ", column_name(header, fields.size()),
                  " is not valid UTF-8 (byte ", bad, " of the field)");
    fields.push_back(std::move(field));
    if (i == line.size()) return fields;
    ++i;  // the tab
  }
}

bool parse_bool(const std::string& text, const std::string& where, const char* field) {
  if (text == "true" || text == "True" || text == "1") return true;
  if (text.empty() || text == "false" || text == "False" || text == "0") return false;
  throw Error(where + ": field '" + field + "': expected true or false, found '" + text + "'");
}

std::string string_field(const json& j, const char* name, const std::string& where) {
  MOEGRAD_CHECK(j.contains(name), where, ": missing field \"", name, "\"");
  MOEGRAD_CHECK(j[name].is_string(), where, ": field \"", name, "\" must be a string, found ",
                j[name].dump());
  return j[name].get<std::string>();
}

int64_t characters(const std::string& text) {
  return int64_t(data::utf8_decode(text).size());
}

// Derives an independent stream per (seed, item): splitmix64's finaliser.
uint64_t mix(uint64_t seed, uint64_t item) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ULL + item + 0x632be59bd9b4e019ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

const char* const kLetters[4] = {"A", "B", "C", "D"};

// Whether a continuation fits the model's positions after at least one token of context.
bool fits(const OlmoeForCausalLM& model, const std::vector<int32_t>& continuation) {
  return int64_t(continuation.size()) < model.config().max_position_embeddings;
}

std::string question_context(const BelebeleItem& item, BelebelePrompt prompt) {
  std::string s = "P: " + item.passage + "\nQ: " + item.question + "\nA:";
  if (prompt == BelebelePrompt::Answers) return s;
  return s + " " + item.answers[0] + "\nB: " + item.answers[1] + "\nC: " + item.answers[2] +
         "\nD: " + item.answers[3] + "\nAnswer:";
}

// The items shown as examples before item `index`.
std::vector<size_t> shot_indices(size_t n, size_t index, const BelebeleOptions& o) {
  const size_t k = size_t(o.shots);
  std::vector<size_t> others;
  for (size_t i = 0; i < n; ++i)
    if (i != index) others.push_back(i);
  if (o.shot_seed) {
    // A partial Fisher-Yates shuffle with raw 64-bit draws: the same picks on every platform
    // (std::uniform_int_distribution is implementation-defined).
    std::mt19937_64 rng(mix(*o.shot_seed, index));
    for (size_t i = 0; i < k; ++i) std::swap(others[i], others[i + rng() % (others.size() - i)]);
  }
  others.resize(k);
  return others;
}

}  // namespace

std::vector<MinimalPair> read_multiblimp(const std::string& path) {
  std::string text = read_all(path);
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a UTF-8 byte order mark
  const std::vector<std::string> lines = split_lines(text);
  MOEGRAD_CHECK(!lines.empty() && !lines[0].empty(), path,
                ": empty file; expected a header row naming the columns sen and wrong_sen");
  const std::vector<std::string> header = split_tsv(lines[0], path + ":1", {});
  std::map<std::string, size_t> column;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i].empty()) continue;  // pandas' unnamed index column
    MOEGRAD_CHECK(column.emplace(header[i], i).second, path, ":1: column '", header[i],
                  "' appears twice in the header");
  }
  for (const char* required : {"sen", "wrong_sen"})
    MOEGRAD_CHECK(column.count(required), path, ":1: the header has no column '", required,
                  "' (MultiBLiMP data.tsv needs sen and wrong_sen)");
  auto optional_column = [&](const char* name) {
    auto it = column.find(name);
    return it == column.end() ? std::optional<size_t>() : it->second;
  };
  const std::optional<size_t> phenomenon = optional_column("phenomenon"), proxy = optional_column("proxy"),
                              source = optional_column("source");

  std::vector<MinimalPair> pairs;
  for (size_t l = 1; l < lines.size(); ++l) {
    if (lines[l].empty()) continue;
    const std::string where = path + ":" + std::to_string(l + 1);
    const std::vector<std::string> f = split_tsv(lines[l], where, header);
    MOEGRAD_CHECK(f.size() == header.size(), where, ": ", f.size(), " fields, but the header has ",
                  header.size());
    MinimalPair p;
    p.sen = f[column["sen"]];
    p.wrong_sen = f[column["wrong_sen"]];
    MOEGRAD_CHECK(!p.sen.empty(), where, ": field 'sen' is empty");
    MOEGRAD_CHECK(!p.wrong_sen.empty(), where, ": field 'wrong_sen' is empty");
    if (phenomenon && !f[*phenomenon].empty()) p.phenomenon = f[*phenomenon];
    if (proxy) p.proxy = parse_bool(f[*proxy], where, "proxy");
    if (source) p.source = f[*source];
    p.line = int64_t(l + 1);
    pairs.push_back(std::move(p));
  }
  MOEGRAD_CHECK(!pairs.empty(), path, ": no minimal pairs after the header");
  return pairs;
}

std::vector<BelebeleItem> read_belebele(const std::string& path) {
  std::string text = read_all(path);
  std::vector<BelebeleItem> items;
  const std::vector<std::string> lines = split_lines(text);
  for (size_t l = 0; l < lines.size(); ++l) {
    if (lines[l].find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(l + 1);
    json j;
    try {
      j = json::parse(lines[l]);
    } catch (const json::exception& e) {
      throw Error(where + ": invalid JSON: " + e.what());
    }
    MOEGRAD_CHECK(j.is_object(), where, ": expected an object with the Belebele fields");
    BelebeleItem item;
    item.passage = string_field(j, "flores_passage", where);
    item.question = string_field(j, "question", where);
    for (int a = 0; a < 4; ++a)
      item.answers[size_t(a)] = string_field(j, ("mc_answer" + std::to_string(a + 1)).c_str(), where);
    MOEGRAD_CHECK(j.contains("correct_answer_num"), where, ": missing field \"correct_answer_num\"");
    const json& c = j["correct_answer_num"];
    const std::string n = c.is_string() ? c.get<std::string>() : c.is_number_integer() ? c.dump() : "";
    MOEGRAD_CHECK(n.size() == 1 && n[0] >= '1' && n[0] <= '4', where,
                  ": field \"correct_answer_num\" must be 1, 2, 3 or 4 (a string or an integer), found ",
                  c.dump());
    item.correct = n[0] - '1';
    if (j.contains("link")) item.link = string_field(j, "link", where);
    if (j.contains("dialect")) item.dialect = string_field(j, "dialect", where);
    if (j.contains("question_number"))
      MOEGRAD_CHECK(j["question_number"].is_number_integer() || j["question_number"].is_string(), where,
                    ": field \"question_number\" must be an integer or a string, found ",
                    j["question_number"].dump());
    if (j.contains("proxy")) {
      MOEGRAD_CHECK(j["proxy"].is_boolean(), where, ": field \"proxy\" must be true or false, found ",
                    j["proxy"].dump());
      item.proxy = j["proxy"].get<bool>();
    }
    item.line = int64_t(l + 1);
    items.push_back(std::move(item));
  }
  MOEGRAD_CHECK(!items.empty(), path, ": no questions (an empty file?)");
  return items;
}

void Accuracy::add(bool right, bool right_norm, bool right_token_norm) {
  ++items;
  correct += right;
  correct_norm += right_norm;
  correct_token_norm += right_token_norm;
}

ordered_json Accuracy::to_json() const {
  const double n = double(items);
  return {{"items", items},
          {"acc", double(correct) / n},
          {"acc_norm", double(correct_norm) / n},
          {"acc_token_norm", double(correct_token_norm) / n}};
}

ordered_json MultiblimpResult::to_json() const {
  ordered_json j = {{"proxy", proxy}};
  j.update(all.to_json());
  j["skipped"] = skipped;
  ordered_json per = ordered_json::object();
  for (const auto& [name, acc] : phenomena) per[name] = acc.to_json();
  j["phenomena"] = per;
  return j;
}

MultiblimpResult score_multiblimp(const OlmoeForCausalLM& model, const data::Tokenizer& tokenizer,
                                  const std::vector<MinimalPair>& pairs, const ScoringOptions& options) {
  MultiblimpResult r;
  r.pairs.resize(pairs.size());
  std::vector<ScoreRequest> requests;
  std::vector<size_t> scored;
  for (size_t i = 0; i < pairs.size(); ++i) {
    std::vector<int32_t> good = tokenizer.encode(pairs[i].sen), bad = tokenizer.encode(pairs[i].wrong_sen);
    if (!fits(model, good) || !fits(model, bad)) {
      r.pairs[i].skipped = true;
      ++r.skipped;
      continue;
    }
    requests.push_back({{}, std::move(good)});
    requests.push_back({{}, std::move(bad)});
    scored.push_back(i);
  }
  const std::vector<ScoredSpan> spans = score_batched(model, requests, options.batch);
  r.proxy = !pairs.empty();
  for (const MinimalPair& p : pairs) r.proxy = r.proxy && p.proxy;
  for (size_t k = 0; k < scored.size(); ++k) {
    const MinimalPair& p = pairs[scored[k]];
    const ScoredSpan& good = spans[2 * k];
    const ScoredSpan& bad = spans[2 * k + 1];
    r.pairs[scored[k]] = {good, bad};
    const bool right = good.logprob > bad.logprob;
    const bool right_norm =
        good.logprob / double(characters(p.sen)) > bad.logprob / double(characters(p.wrong_sen));
    const bool right_token_norm = good.logprob / double(good.tokens) > bad.logprob / double(bad.tokens);
    r.all.add(right, right_norm, right_token_norm);
    r.phenomena[p.phenomenon].add(right, right_norm, right_token_norm);
  }
  return r;
}

BelebelePrompt parse_belebele_prompt(const std::string& name) {
  if (name == "letters") return BelebelePrompt::Letters;
  if (name == "answers") return BelebelePrompt::Answers;
  throw Error("Belebele prompt '" + name + "': expected letters or answers");
}

const char* belebele_prompt_name(BelebelePrompt prompt) {
  return prompt == BelebelePrompt::Letters ? "letters" : "answers";
}

std::array<std::string, 4> belebele_choices(const BelebeleItem& item, BelebelePrompt prompt) {
  std::array<std::string, 4> out;
  for (size_t a = 0; a < 4; ++a)
    out[a] = " " + (prompt == BelebelePrompt::Letters ? std::string(kLetters[a]) : item.answers[a]);
  return out;
}

std::string belebele_context(const std::vector<BelebeleItem>& items, size_t index,
                             const BelebeleOptions& options) {
  MOEGRAD_CHECK(options.shots >= 0 && size_t(options.shots) < items.size(), "Belebele ", options.shots,
                "-shot needs ", options.shots + 1, " questions in the file; it has ", items.size());
  std::string s;
  for (size_t shot : shot_indices(items.size(), index, options)) {
    const BelebeleItem& e = items[shot];
    s +=
        question_context(e, options.prompt) + belebele_choices(e, options.prompt)[size_t(e.correct)] + "\n\n";
  }
  return s + question_context(items[index], options.prompt);
}

ordered_json BelebeleResult::to_json(const BelebeleOptions& options) const {
  ordered_json j = {
      {"proxy", proxy}, {"prompt", belebele_prompt_name(options.prompt)}, {"shots", options.shots}};
  if (options.shots > 0)
    j["shot_seed"] = options.shot_seed ? ordered_json(*options.shot_seed) : ordered_json("first");
  j.update(accuracy.to_json());
  j["truncated"] = truncated;
  j["skipped"] = skipped;
  return j;
}

BelebeleResult score_belebele(const OlmoeForCausalLM& model, const data::Tokenizer& tokenizer,
                              const std::vector<BelebeleItem>& items, const BelebeleOptions& options) {
  BelebeleResult r;
  r.logprobs.assign(items.size(), {0, 0, 0, 0});
  r.predicted.assign(items.size(), -1);
  std::vector<ScoreRequest> requests;
  std::vector<std::array<std::string, 4>> choices(items.size());
  std::vector<size_t> scored;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::vector<int32_t> context = tokenizer.encode(belebele_context(items, i, options));
    choices[i] = belebele_choices(items[i], options.prompt);
    std::array<std::vector<int32_t>, 4> ids;
    bool fit = true;
    for (size_t a = 0; a < 4; ++a) {
      ids[a] = tokenizer.encode(choices[i][a]);
      fit = fit && fits(model, ids[a]);
    }
    if (!fit) {
      ++r.skipped;
      continue;
    }
    for (size_t a = 0; a < 4; ++a) requests.push_back({context, std::move(ids[a])});
    scored.push_back(i);
  }
  const std::vector<ScoredSpan> spans = score_batched(model, requests, options.scoring.batch);
  r.proxy = !items.empty();
  for (const BelebeleItem& item : items) r.proxy = r.proxy && item.proxy;
  for (size_t k = 0; k < scored.size(); ++k) {
    const size_t i = scored[k];
    std::array<double, 4> lp, per_char, per_token;
    bool truncated = false;
    for (size_t a = 0; a < 4; ++a) {
      const ScoredSpan& s = spans[4 * k + a];
      lp[a] = s.logprob;
      per_char[a] = s.logprob / double(characters(choices[i][a]));
      per_token[a] = s.logprob / double(s.tokens);
      truncated = truncated || s.truncated;
    }
    auto argmax = [](const std::array<double, 4>& v) {
      return int(std::max_element(v.begin(), v.end()) - v.begin());
    };
    const int correct = items[i].correct;
    r.logprobs[i] = lp;
    r.predicted[i] = argmax(lp);
    r.accuracy.add(argmax(lp) == correct, argmax(per_char) == correct, argmax(per_token) == correct);
    r.truncated += truncated;
  }
  return r;
}

ordered_json PerplexityResult::to_json() const {
  return {{"seq_len", seq_len},
          {"documents", documents},
          {"tokens", tokens},
          {"bytes", bytes},
          {"nll", nll()},
          {"ppl", std::exp(nll())},
          {"bpb", nll_sum / (std::log(2.0) * double(bytes))}};
}

PerplexityResult score_perplexity(const OlmoeForCausalLM& model, const data::Tokenizer& tokenizer,
                                  const std::string& path, const PerplexityOptions& options) {
  const int64_t max_len = model.config().max_position_embeddings;
  const int64_t seq_len = options.seq_len == 0 ? max_len : options.seq_len;
  MOEGRAD_CHECK(seq_len >= 2 && seq_len <= max_len, "perplexity: windows of ", seq_len,
                " tokens: must be from 2 to the model's max_position_embeddings, ", max_len);
  MOEGRAD_CHECK(options.max_tokens >= 1, "perplexity: max_tokens must be positive, got ", options.max_tokens);
  const size_t scored_per_window = size_t(seq_len - 1);

  PerplexityResult r;
  r.seq_len = seq_len;
  std::vector<ScoreRequest> requests;
  data::DocumentSource source(path);
  data::Document doc;
  while (r.tokens < options.max_tokens && source.next(doc)) {
    const std::vector<int32_t> ids = tokenizer.encode(doc.text);
    if (ids.empty()) continue;
    ++r.documents;
    for (size_t begin = 0; begin < ids.size() && r.tokens < options.max_tokens; begin += scored_per_window) {
      const size_t end =
          std::min({ids.size(), begin + scored_per_window, begin + size_t(options.max_tokens - r.tokens)});
      ScoreRequest q;
      if (begin > 0) q.context = {ids[begin - 1]};  // else the start token
      q.continuation.assign(ids.begin() + int64_t(begin), ids.begin() + int64_t(end));
      for (int32_t id : q.continuation) r.bytes += int64_t(tokenizer.token_bytes(id).size());
      r.tokens += int64_t(q.continuation.size());
      requests.push_back(std::move(q));
    }
  }
  MOEGRAD_CHECK(r.tokens > 0, path, ": no text to score");
  for (const ScoredSpan& s : score_batched(model, requests, options.scoring.batch)) r.nll_sum -= s.logprob;
  return r;
}

}  // namespace moegrad::eval
