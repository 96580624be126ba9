#include "train/pipeline_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>

#include "core/device.h"
#include "core/error.h"
#include "core/split_list.h"
#include "eval/routing_analysis.h"
#include "eval/steering.h"
#include "train/config.h"

namespace moegrad::train {

namespace po = boost::program_options;
namespace fs = std::filesystem;

const char* const kPipelineStages[] = {"pretrain", "cpt",      "analysis", "adapt",
                                       "benchmarks", "steering", "profile"};

namespace {

const char* const kTrainingSections[] = {"pretrain", "cpt", "adapt"};

// Train keys the pipeline sets itself, to join the stages.
const char* const kJoinedKeys[] = {"model.from",  "data.train",   "data.heldout",
                                   "data.tokenizer", "run.dir",   "run.name",
                                   "adapt.method", "adapt.language", "adapt.routing",
                                   "adapt.parents"};

template <typename C, typename F>
void visit(C& c, F&& f) {
  f("pipeline.dir", c.dir, "folder for every stage's results and report.md; required");
  f("pipeline.english", c.english, "the base model's language: reference of the divergences");
  f("pipeline.target", c.target, "the language the adaptation variants train for");
  f("pipeline.parents", c.parents,
    "child:parent pairs (a language without experts of its own borrows its parent's), e.g. "
    "'uk:ru'; none: no pairs; empty: the papers' (ca-es et-fi mr-hi sk-cs uk-ru ur-ar nl-en)");
  f("pipeline.base", c.base,
    "HF model directory of the English base; empty: pretrain one as [pretrain] says");
  f("pipeline.device", c.device, "cpu, cuda, cuda:N or auto, for every stage");
  f("data.corpus", c.corpus,
    "documents as PATH/<lang>/train and PATH/<lang>/heldout (folders of .txt, a .txt or a "
    ".jsonl each; the layout of corpora/manpages), tokenized into pipeline.dir/shards");
  f("data.shards", c.shards,
    "instead of data.corpus: token shards already built (moegrad data build), DIR/train and "
    "DIR/heldout");
  f("data.tokenizer", c.tokenizer,
    "tokenizer.json; empty: the base model's, else a byte-level BPE trained on the English "
    "training documents");
  f("data.vocab_size", c.vocab_size, "vocabulary of a tokenizer trained here");
  f("analysis.tokens", c.analysis_tokens, "held-out tokens routed per language");
  f("analysis.seq_len", c.analysis_seq_len, "window length; 0: the cpt stage's data.seq_len");
  f("analysis.batch_size", c.analysis_batch_size, "windows per forward");
  f("analysis.alpha", c.alpha, "activation gap at which an expert is language-specific");
  f("analysis.shared_k", c.shared_k, "shared experts per layer");
  f("analysis.overlap_min_count", c.overlap_min_count,
    "occurrences from which a token type counts as used by a language (vocabulary overlap)");
  f("benchmarks.multiblimp", c.multiblimp,
    "MultiBLiMP: DIR/<lang>/data.tsv, proxy (minimal pairs made from held-out documents) or none");
  f("benchmarks.belebele", c.belebele,
    "Belebele: DIR/<lang>.jsonl, proxy (next-sentence questions from held-out documents) or none");
  f("benchmarks.perplexity", c.perplexity,
    "held-out documents for perplexity (found per language as for 'benchmark run "
    "--perplexity'), heldout (data.corpus's) or none");
  f("benchmarks.items", c.proxy_items, "minimal pairs and questions per language of a proxy set");
  f("benchmarks.shots", c.shots, "Belebele examples before each question");
  f("benchmarks.prompt", c.prompt, "Belebele prompt: letters (the papers') or answers");
  f("benchmarks.perplexity_tokens", c.perplexity_tokens, "tokens scored per language");
  f("benchmarks.batch_tokens", c.batch_tokens, "padded tokens per forward");
  f("steering.model", c.steer_model, "the model steered: base, cpt or adapt-<method>");
  f("steering.language", c.steer_language,
    "whose preferred experts are promoted; empty: pipeline.english (the papers' task experts)");
  f("steering.reference", c.steer_reference,
    "compared with this language; empty: the mean expert");
  f("steering.layers", c.steer_layers, "FIRST-LAST steered layers; empty: the middle third");
  f("steering.tau", c.tau, "an expert is promoted when its activation frequency exceeds the "
                           "reference's by more than tau");
  f("steering.std", c.num_std, "instead of tau: by more than this many standard deviations");
  f("steering.mode", c.steer_mode, "hard (log-softmax, max + delta) or soft (+ lambda * w)");
  f("steering.delta", c.delta, "hard form: above the row's maximum");
  f("steering.lambda", c.lambda, "soft form: scale of the weights");
  f("profile.steps", c.profile_steps, "training steps of the base model's shape profiled");
  f("profile.warmup", c.profile_warmup, "untimed steps first");
}

template <typename T>
std::string shown(const T& v) {
  std::ostringstream os;
  if constexpr (std::is_floating_point_v<T>)
    os << std::setprecision(std::numeric_limits<T>::max_digits10 - 2) << v;
  else
    os << v;
  return os.str();
}

struct ListKeys {
  std::string languages;
  std::string stages = "pretrain,cpt,analysis,adapt,benchmarks,steering,profile";
  std::string methods = "seft,ssft,aeft,final_layers";
};

po::options_description options_for(PipelineConfig& c, ListKeys& lists) {
  po::options_description o(
      "Pipeline keys ([section] key = value in the file, or --section.key=value)");
  o.add_options()("pipeline.languages", po::value<std::string>(&lists.languages),
                  "every language of the data, comma-separated; required")(
      "pipeline.stages", po::value<std::string>(&lists.stages)->default_value(lists.stages),
      "the stages that run, of pretrain (only without pipeline.base), cpt, analysis, adapt, "
      "benchmarks, steering, profile; the data and report.md are always made")(
      "adapt.methods", po::value<std::string>(&lists.methods)->default_value(lists.methods),
      "the adaptation variants, each an adapt.method of 'moegrad train --help' (seft, ssft, "
      "aeft, top_n, random, final_layers, full)");
  visit(c, [&](const char* key, auto& field, const char* help) {
    using T = std::decay_t<decltype(field)>;
    o.add_options()(key, po::value<T>(&field)->default_value(field, shown(field)), help);
  });
  return o;
}

bool one_of(const std::string& s, std::initializer_list<const char*> list) {
  for (const char* x : list)
    if (s == x) return true;
  return false;
}

// "--a.b 1" as "--a.b=1", so that unregistered keys keep their value.
std::vector<std::string> joined_overrides(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) == 0 && args[i].find('=') == std::string::npos &&
        i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) {
      out.push_back(args[i] + "=" + args[i + 1]);
      ++i;
    } else {
      out.push_back(args[i]);
    }
  }
  return out;
}

// A stage section's key "cpt.train.steps": checks it against the train config's keys.
void take_stage_key(PipelineConfig& c, const std::string& where, const std::string& full,
                    const std::string& value) {
  const size_t dot = full.find('.');
  const std::string section = full.substr(0, dot);
  const bool training = dot != std::string::npos &&
                        std::find_if(std::begin(kTrainingSections), std::end(kTrainingSections),
                                     [&](const char* s) { return section == s; }) !=
                            std::end(kTrainingSections);
  MOEGRAD_CHECK(training, where, ": unknown key '", full,
                "' (see 'moegrad run --help' for every key)");
  const std::string key = full.substr(dot + 1);
  static const po::options_description train_keys = config_options();
  MOEGRAD_CHECK(train_keys.find_nothrow(key, false) != nullptr, where, ": ", full, ": '", key,
                "' is not a key of moegrad train's config (see 'moegrad train --help')");
  for (const char* joined : kJoinedKeys)
    MOEGRAD_CHECK(key != joined, where, ": ", full, ": the pipeline sets ", key,
                  " itself (it joins the stages); see 'moegrad run --help'");
  MOEGRAD_CHECK(section == "adapt" || key.rfind("adapt.", 0) != 0, where, ": ", full,
                ": adaptation keys belong in [adapt]");
  c.stage_keys[section].emplace_back(key, value);
}

void check(bool ok, const PipelineConfig& c, const char* key, const std::string& what) {
  MOEGRAD_CHECK(ok, c.source, ": ", key, ": ", what);
}

void check_at_least(const PipelineConfig& c, const char* key, int64_t value, int64_t min) {
  check(value >= min, c, key, "must be at least " + std::to_string(min) + ", got " + shown(value));
}

void check_non_negative(const PipelineConfig& c, const char* key, double value) {
  check(std::isfinite(value) && value >= 0, c, key,
        "must be a finite number >= 0, got " + shown(value));
}

// `parse` of the value of `key`, its error named after the key.
template <typename Parse>
void check_parses(const PipelineConfig& c, const char* key, Parse&& parse) {
  try {
    parse();
  } catch (const Error& e) {
    check(false, c, key, e.what());
  }
}

void validate(PipelineConfig& c, const ListKeys& lists) {
  check(!c.dir.empty(), c, "pipeline.dir", "is required (the folder for the results)");
  c.languages = split_list(lists.languages, ',');
  check(!c.languages.empty(), c, "pipeline.languages", "is required (e.g. en,de,uk)");
  auto has_language = [&](const std::string& l) {
    return std::find(c.languages.begin(), c.languages.end(), l) != c.languages.end();
  };
  check(has_language(c.english), c, "pipeline.english",
        "'" + c.english + "' is not in pipeline.languages");
  c.stages = split_list(lists.stages, ',');
  for (const std::string& s : c.stages)
    check(std::find_if(std::begin(kPipelineStages), std::end(kPipelineStages),
                       [&](const char* k) { return s == k; }) != std::end(kPipelineStages),
          c, "pipeline.stages",
          "unknown stage '" + s + "' (pretrain, cpt, analysis, adapt, benchmarks, steering, "
          "profile)");
  check(c.base.empty() || !c.runs("pretrain"), c, "pipeline.stages",
        "pretrain with pipeline.base: the base is given, leave pretrain out");
  check(!c.base.empty() || c.runs("pretrain"), c, "pipeline.base",
        "is required when pretrain is not among pipeline.stages");
  check(c.base.empty() || fs::is_regular_file(fs::path(c.base) / "config.json"), c,
        "pipeline.base", "'" + c.base + "' is not an HF model directory (no config.json)");
  c.methods = split_list(lists.methods, ',');
  if (c.runs("adapt")) {
    check(!c.methods.empty(), c, "adapt.methods", "lists no method");
    check(has_language(c.target), c, "pipeline.target",
          c.target.empty() ? std::string("is required by the adapt stage")
                           : "'" + c.target + "' is not in pipeline.languages");
    check(c.runs("analysis"), c, "pipeline.stages", "adapt needs analysis (it picks the experts)");
    for (const std::string& m : c.methods)
      check(one_of(m, {"seft", "ssft", "aeft", "top_n", "random", "final_layers", "full"}), c,
            "adapt.methods",
            "unknown method '" + m + "' (seft, ssft, aeft, top_n, random, final_layers, full)");
  }
  check(c.corpus.empty() != c.shards.empty(), c, "data.corpus",
        "give exactly one of data.corpus (documents) and data.shards (token shards)");
  const std::string data = c.corpus.empty() ? c.shards : c.corpus;
  const char* data_key = c.corpus.empty() ? "data.shards" : "data.corpus";
  check(fs::is_directory(data), c, data_key, "'" + data + "' is not a folder");
  for (const std::string& lang : c.languages)
    for (const char* split : {"train", "heldout"}) {
      const fs::path p = c.corpus.empty() ? fs::path(c.shards) / split / (lang + ".shard")
                                          : fs::path(c.corpus) / lang / split;
      check(fs::exists(p), c, data_key, "no " + std::string(split) + " data for '" + lang +
                                            "' (" + p.string() + " does not exist)");
    }
  check(c.tokenizer.empty() || fs::is_regular_file(c.tokenizer), c, "data.tokenizer",
        "'" + c.tokenizer + "' does not exist");
  check(c.vocab_size >= 257, c, "data.vocab_size", "must be at least 257 (256 bytes + EOS)");
  check_parses(c, "pipeline.device", [&] { Device::select(c.device); });
  check_parses(c, "pipeline.parents", [&] { eval::parse_parents(c.parents); });
  check_at_least(c, "analysis.tokens", c.analysis_tokens, 1);
  check_at_least(c, "analysis.seq_len", c.analysis_seq_len, 0);
  check_at_least(c, "analysis.batch_size", c.analysis_batch_size, 1);
  check_non_negative(c, "analysis.alpha", c.alpha);
  check_at_least(c, "analysis.shared_k", c.shared_k, 0);
  check_at_least(c, "analysis.overlap_min_count", c.overlap_min_count, 1);
  for (const auto& [key, value] : {std::pair<const char*, std::string>{"benchmarks.multiblimp",
                                                                       c.multiblimp},
                                   {"benchmarks.belebele", c.belebele}})
    check(value == "proxy" || value == "none" || fs::is_directory(value), c, key,
          "'" + value + "' is not proxy, none or a folder");
  check(c.perplexity == "none" || c.perplexity == "heldout" || fs::exists(c.perplexity) ||
            c.perplexity.find("{lang}") != std::string::npos,
        c, "benchmarks.perplexity", "'" + c.perplexity + "' is not heldout, none or a path");
  check((c.multiblimp != "proxy" && c.belebele != "proxy" && c.perplexity != "heldout") ||
            !c.corpus.empty(),
        c, "benchmarks.multiblimp",
        "proxy sets and held-out perplexity are made from data.corpus's documents: give "
        "data.corpus, or benchmark folders");
  check_at_least(c, "benchmarks.items", c.proxy_items, 1);
  check_at_least(c, "benchmarks.shots", c.shots, 0);
  check_at_least(c, "benchmarks.perplexity_tokens", c.perplexity_tokens, 1);
  check_at_least(c, "benchmarks.batch_tokens", c.batch_tokens, 1);
  check(one_of(c.prompt, {"letters", "answers"}), c, "benchmarks.prompt",
        "'" + c.prompt + "' is not letters or answers");
  check(one_of(c.steer_mode, {"hard", "soft"}), c, "steering.mode",
        "'" + c.steer_mode + "' is not hard or soft");
  const bool known_model =
      c.steer_model == "base" || (c.steer_model == "cpt" && c.runs("cpt")) ||
      (c.steer_model.rfind("adapt-", 0) == 0 && c.runs("adapt") &&
       std::find(c.methods.begin(), c.methods.end(), c.steer_model.substr(6)) != c.methods.end());
  check(!c.runs("steering") || known_model, c, "steering.model",
        "'" + c.steer_model + "' is not base, cpt (when it runs) or an adapt-<method> variant");
  check(!c.runs("steering") || c.runs("analysis"), c, "pipeline.stages",
        "steering needs analysis (it picks the experts)");
  // The steering stage runs last: a mistyped value must not wait for every training stage.
  for (const auto& [key, language] : {std::pair{"steering.language", c.steer_language},
                                      std::pair{"steering.reference", c.steer_reference}})
    check(language.empty() || has_language(language), c, key,
          "'" + language + "' is not in pipeline.languages");
  if (!c.steer_layers.empty())
    check_parses(c, "steering.layers", [&] { eval::parse_layer_range(c.steer_layers); });
  check_non_negative(c, "steering.tau", c.tau);
  check_non_negative(c, "steering.std", c.num_std);
  check_non_negative(c, "steering.delta", c.delta);
  check_non_negative(c, "steering.lambda", c.lambda);
  check_at_least(c, "profile.steps", c.profile_steps, 1);
  check_at_least(c, "profile.warmup", c.profile_warmup, 0);
}

}  // namespace

bool PipelineConfig::runs(const std::string& stage) const {
  return std::find(stages.begin(), stages.end(), stage) != stages.end();
}

std::vector<std::string> PipelineConfig::training_stages() const {
  std::vector<std::string> out;
  if (runs("pretrain")) out.push_back("pretrain");
  if (runs("cpt")) out.push_back("cpt");
  if (runs("adapt"))
    for (const std::string& m : methods) out.push_back("adapt-" + m);
  return out;
}

po::options_description pipeline_options() {
  static PipelineConfig defaults;
  static ListKeys lists;
  return options_for(defaults, lists);
}

PipelineConfig load_pipeline(const std::string& path, const std::vector<std::string>& overrides) {
  PipelineConfig c;
  c.source = path;
  MOEGRAD_CHECK(fs::is_regular_file(path), "pipeline config '", path, "' does not exist");
  std::ifstream in(path);
  MOEGRAD_CHECK(in, "cannot read pipeline config '", path, "'");
  ListKeys lists;
  const po::options_description options = options_for(c, lists);
  po::variables_map vm;
  auto parse = [&](const std::string& where, auto&& fn) {
    try {
      return fn();
    } catch (const po::error& e) {
      throw Error(where + ": " + e.what());
    }
  };
  // The command line goes in first: a variables_map keeps the first value it is given. Its
  // stage keys come after the file's, so that the last of a key wins in the stage's config.
  const po::parsed_options cli = parse("command line", [&] {
    po::parsed_options p =
        po::command_line_parser(joined_overrides(overrides)).options(options).allow_unregistered().run();
    po::store(p, vm);
    return p;
  });
  const po::parsed_options file = parse(path, [&] {
    po::parsed_options p = po::parse_config_file(in, options, true);
    po::store(p, vm);
    return p;
  });
  parse(path, [&] {
    po::notify(vm);
    return 0;
  });
  for (const auto& [parsed, where] : {std::pair{&file, path}, std::pair{&cli, std::string("command line")}})
    for (const po::option& o : parsed->options) {
      if (!o.unregistered) continue;
      MOEGRAD_CHECK(!o.string_key.empty() && o.value.size() == 1, where, ": '",
                    o.original_tokens.empty() ? o.string_key : o.original_tokens[0],
                    "' is not a key = value setting");
      take_stage_key(c, where, o.string_key, o.value[0]);
    }
  validate(c, lists);
  return c;
}

std::string stage_ini(const PipelineConfig& config, const std::string& stage,
                      const std::vector<std::pair<std::string, std::string>>& joined) {
  const std::string kind = stage.substr(0, stage.find('-'));
  std::vector<std::pair<std::string, std::string>> keys;
  auto it = config.stage_keys.find(kind);
  if (it != config.stage_keys.end()) keys = it->second;
  for (const auto& kv : joined)
    if (std::none_of(keys.begin(), keys.end(), [&](const auto& k) { return k.first == kv.first; }))
      keys.push_back(kv);
  // Grouped by section, in the order each section first appears.
  std::vector<std::string> sections;
  for (const auto& [key, value] : keys) {
    const std::string s = key.substr(0, key.find('.'));
    if (std::find(sections.begin(), sections.end(), s) == sections.end()) sections.push_back(s);
  }
  std::ostringstream os;
  // No path of the pipeline file here: the text is part of the stage's signature.
  os << "# stage " << stage << " of a moegrad run pipeline\n";
  for (const std::string& s : sections) {
    os << "\n[" << s << "]\n";
    for (const auto& [key, value] : keys)
      if (key.substr(0, key.find('.')) == s) os << key.substr(s.size() + 1) << " = " << value << "\n";
  }
  return os.str();
}

}  // namespace moegrad::train
