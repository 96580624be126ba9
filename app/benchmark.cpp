// moegrad benchmark: MultiBLiMP, Belebele and held-out perplexity per language from local files
// (run), and the clearly labelled proxy sets in the same formats made from held-out text
// (proxies), so that the evaluation runs offline; with a steering file, every score without and
// with router steering.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>

#include "app/cli.h"
#include "app/model_args.h"
#include "app/progress.h"
#include "core/io/atomic_file.h"
#include "core/io/json_reader.h"
#include "core/split_list.h"
#include "eval/benchmarks.h"
#include "eval/proxy_benchmarks.h"
#include "eval/steering.h"
#include "moe/checkpoint.h"

namespace moegrad::app {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

po::options_description proxies_options() {
  po::options_description options("Options of 'benchmark proxies'");
  options.add_options()("help,h", "show this help and exit")(
      "corpus", po::value<std::string>()->value_name("PATH"),
      "held-out documents: PATH/<lang>/heldout (the layout of corpora/manpages), else PATH/<lang>, "
      "or a PATH with {lang} in it; each a folder of .txt files, a .txt or a .jsonl file; required")(
      "out", po::value<std::string>()->value_name("DIR"),
      "folder for proxy_multiblimp/<lang>/data.tsv, proxy_belebele/<lang>.jsonl, their READMEs "
      "and proxies.json; required")(
      "languages", po::value<std::string>()->value_name("a,b,..."),
      "languages (default: every folder in --corpus; required when PATH has {lang})")(
      "items", po::value<int64_t>()->default_value(200)->value_name("N"),
      "minimal pairs and questions per language, at most")(
      "seed", po::value<uint64_t>()->default_value(0)->value_name("S"),
      "the same seed gives byte-identical files")("passage-sentences",
                                                  po::value<int64_t>()->default_value(3)->value_name("N"),
                                                  "sentences in a question's passage")(
      "min-words", po::value<int64_t>()->default_value(5)->value_name("N"),
      "fewest words of a sentence used")(
      "max-words", po::value<int64_t>()->default_value(40)->value_name("N"), "most words of a sentence used");
  return options;
}

po::options_description run_options() {
  po::options_description options("Options of 'benchmark run'");
  options.add_options()("help,h", "show this help and exit");
  add_model_options(options);
  options.add_options()("out", po::value<std::string>()->value_name("DIR"),
                        "folder for results.json and the CSV tables; required")(
      "multiblimp", po::value<std::string>()->value_name("DIR"),
      "MultiBLiMP: DIR/<lang>/data.tsv (e.g. a proxy_multiblimp folder)")(
      "belebele", po::value<std::string>()->value_name("DIR"),
      "Belebele: DIR/<name>.jsonl, one file per language variant (e.g. a proxy_belebele folder)")(
      "perplexity", po::value<std::string>()->value_name("PATH"),
      "held-out documents, found per language as for 'benchmark proxies --corpus'")(
      "languages", po::value<std::string>()->value_name("a,b,..."),
      "languages (default: every one each benchmark's folder holds)")(
      "shots", po::value<int64_t>()->default_value(0)->value_name("K"),
      "Belebele: examples before each question, from the same file (the papers report 4)")(
      "shot-seed", po::value<uint64_t>()->value_name("S"),
      "Belebele: draw the examples with this seed (default: the first K other questions)")(
      "prompt", po::value<std::string>()->default_value("letters"),
      "Belebele prompt: letters (score \" A\"..\" D\" after the passage, question and lettered "
      "answers; the papers') or answers (score each answer's text after the passage and question)")(
      "seq-len", po::value<int64_t>()->value_name("N"),
      "perplexity window in tokens (default: the model's max_position_embeddings)")(
      "max-tokens", po::value<int64_t>()->default_value(1000000)->value_name("N"),
      "perplexity: tokens scored per language at most")(
      "batch-tokens", po::value<int64_t>()->default_value(4096)->value_name("N"),
      "padded tokens per forward (batch x length)")(
      "steer", po::value<std::string>()->value_name("FILE"),
      "router steering file (see below): score every benchmark without and with it")(
      "start-id", po::value<int32_t>()->value_name("ID"),
      "token that conditions text scored from its start (default: the model's BOS, else EOS, "
      "else the tokenizer's <|endoftext|>)");
  add_device_option(options);
  return options;
}

po::options_description steer_options() {
  po::options_description options("Options of 'benchmark steer'");
  options.add_options()("help,h", "show this help and exit")(
      "analysis", po::value<std::string>()->value_name("FILE"),
      "routing.json of moegrad analyze; required")(
      "out", po::value<std::string>()->value_name("FILE"), "steering file to write; required")(
      "language", po::value<std::string>()->default_value(""),
      "whose preferred experts to promote (default: the analysis's English)")(
      "reference", po::value<std::string>()->default_value(""),
      "compared with this language (default: the mean expert, i.e. task experts)")(
      "layers", po::value<std::string>()->value_name("FIRST-LAST"),
      "steered layers (default: the middle third)")(
      "tau", po::value<double>()->default_value(0.3, "0.3"),
      "an expert is preferred when its activation frequency exceeds the reference's by more")(
      "std", po::value<double>()->default_value(0.0),
      "instead of tau: by more than this many standard deviations of the differences (0: tau)")(
      "mode", po::value<std::string>()->default_value("hard"), "hard or soft")(
      "delta", po::value<double>()->default_value(0.01), "hard form: above the row's maximum")(
      "lambda", po::value<double>()->default_value(1.0), "soft form: scale of the weights");
  return options;
}

std::string steer_usage() {
  std::ostringstream os;
  os << "Usage: moegrad benchmark steer --analysis routing.json --out steer.json [options]\n\n"
        "Writes a router steering file (for 'benchmark run --steer') that promotes, in the\n"
        "chosen layers, the experts a language activates more than the reference does (paper 2:\n"
        "English task experts in the middle layers).\n\n"
     << steer_options();
  return os.str();
}

std::string proxies_usage() {
  std::ostringstream os;
  os << "Usage: moegrad benchmark proxies --corpus PATH --out DIR [options]\n\n"
        "Makes PROXY benchmarks from held-out documents, in the formats of MultiBLiMP (minimal\n"
        "pairs: a prose sentence and the same sentence with two adjacent words swapped,\n"
        "phenomenon proxy-adjacent-swap) and Belebele (a passage of consecutive sentences, \"Which\n"
        "sentence comes next?\", the true next sentence among three from other pages), each row\n"
        "marked proxy, with a README beside each set. They are not MultiBLiMP or Belebele.\n\n"
     << proxies_options();
  return os.str();
}

std::string run_usage() {
  std::ostringstream os;
  os << "Usage: moegrad benchmark run --model DIR --out DIR [--multiblimp DIR] [--belebele DIR]\n"
        "                             [--perplexity PATH] [options]\n\n"
        "Scores the given benchmarks per language and writes results.json and the tables\n"
        "multiblimp.csv, multiblimp_phenomena.csv, belebele.csv and perplexity.csv. MultiBLiMP:\n"
        "acc (log p(sen) > log p(wrong_sen)), acc_norm (per character) and acc_token_norm (per\n"
        "token). Belebele: accuracy of the choice of highest log-likelihood, and its per-character\n"
        "and per-token variants. Perplexity: tokens, mean NLL, ppl and bits per byte. Proxy sets\n"
        "are labelled proxy in every output.\n\n"
        "--steer FILE scores everything twice, without and then with router steering at\n"
        "inference (the hard form: in the chosen layers, on the log-softmax of the router\n"
        "logits, promoted experts set to the row's max + delta and demoted ones to its min -\n"
        "delta; the soft form: lambda * w added or subtracted), and adds to every row of\n"
        "results.json a \"steered\" result and a \"steering_difference\" (steered minus\n"
        "unsteered), and to every table the steered_* and diff_* columns. FILE is JSON:\n"
        "  {\"mode\": \"hard\"|\"soft\", \"delta\": 0.01, \"lambda\": 1.0,\n"
        "   \"layers\": [first, last] | \"layer_list\": [l, ...],\n"
        "   \"promote\": {\"<layer>\": [experts]} and/or \"promote_all\": [experts],\n"
        "   \"demote\" / \"demote_all\": the same, \"weights\": {\"<layer>\": {\"<expert>\": w}}}\n\n"
     << run_options();
  return os.str();
}

[[noreturn]] void usage_error(const std::string& sub, const std::string& message) {
  throw UsageError("benchmark", sub + ": " + message);
}

po::variables_map parse(const std::string& sub, const po::options_description& options, const Args& args) {
  try {
    return parse_options("benchmark", options, args);
  } catch (const UsageError& e) {
    usage_error(sub, e.what());
  }
}

std::string need(const po::variables_map& vm, const std::string& sub, const char* flag) {
  if (!vm.count(flag)) usage_error(sub, std::string("--") + flag + " is required");
  return vm[flag].as<std::string>();
}

std::optional<std::vector<std::string>> language_flag(const po::variables_map& vm) {
  if (!vm.count("languages")) return std::nullopt;
  return split_list(vm["languages"].as<std::string>(), ',');
}

// The sorted names that `name` gives the entries of `dir` it accepts.
std::vector<std::string> list_dir(const std::string& flag, const fs::path& dir,
                                  const std::function<std::optional<std::string>(const fs::path&)>& name) {
  MOEGRAD_CHECK(fs::is_directory(dir), flag, ": ", dir.string(), " is not a folder");
  std::vector<std::string> out;
  for (const fs::directory_entry& e : fs::directory_iterator(dir))
    if (std::optional<std::string> n = name(e.path())) out.push_back(*n);
  std::sort(out.begin(), out.end());
  MOEGRAD_CHECK(!out.empty(), flag, ": ", dir.string(), " holds no languages");
  return out;
}

// Documents of each language: PATH with {lang} replaced, else PATH/<lang>/heldout when it
// exists, else PATH/<lang>.
std::map<std::string, std::string> document_paths(const std::string& flag, const std::string& path,
                                                  std::optional<std::vector<std::string>> languages) {
  const size_t at = path.find("{lang}");
  if (!languages) {
    MOEGRAD_CHECK(at == std::string::npos, flag, ": ", path, " names languages by {lang}: give --languages");
    // Hidden folders (a download cache) are no language.
    languages = list_dir(flag, path, [](const fs::path& p) -> std::optional<std::string> {
      const std::string name = p.filename().string();
      if (!fs::is_directory(p) || name.empty() || name[0] == '.') return std::nullopt;
      return name;
    });
  }
  std::map<std::string, std::string> out;
  for (const std::string& lang : *languages) {
    fs::path p = at != std::string::npos ? fs::path(std::string(path).replace(at, 6, lang))
                 : fs::exists(fs::path(path) / lang / "heldout") ? fs::path(path) / lang / "heldout"
                                                                 : fs::path(path) / lang;
    MOEGRAD_CHECK(fs::exists(p), flag, ": no documents for '", lang, "' (", p.string(), " does not exist)");
    out[lang] = p.string();
  }
  return out;
}

// The benchmark files of each language: dir/<lang>/data.tsv or dir/<lang>.jsonl.
std::map<std::string, std::string> benchmark_files(const std::string& flag, const fs::path& dir,
                                                   const std::optional<std::vector<std::string>>& languages,
                                                   bool multiblimp) {
  auto file_of = [&](const std::string& lang) {
    return multiblimp ? dir / lang / "data.tsv" : dir / (lang + ".jsonl");
  };
  const std::vector<std::string> langs =
      languages ? *languages : list_dir(flag, dir, [&](const fs::path& p) -> std::optional<std::string> {
        if (multiblimp && fs::is_regular_file(p / "data.tsv")) return p.filename().string();
        if (!multiblimp && p.extension() == ".jsonl") return p.stem().string();
        return std::nullopt;
      });
  std::map<std::string, std::string> out;
  for (const std::string& lang : langs) {
    const fs::path f = file_of(lang);
    MOEGRAD_CHECK(fs::is_regular_file(f), flag, ": no file for '", lang, "' (", f.string(),
                  " does not exist)");
    out[lang] = f.string();
  }
  return out;
}

std::string number(const ordered_json& v) { return csv_number(v.get<double>()); }

// A value printed for the terminal: "n/a" where nothing was scored.
std::string shown(const ordered_json& v, const char* format = "%.4f") {
  const double x = v.get<double>();
  if (!std::isfinite(x)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, format, x);
  return buf;
}

const std::vector<std::string> kAccuracies = {"acc", "acc_norm", "acc_token_norm"};
const std::vector<std::string> kPerplexities = {"nll", "ppl", "bpb"};

// {metric: steered - unsteered}.
ordered_json difference(const ordered_json& unsteered, const ordered_json& steered,
                        const std::vector<std::string>& metrics) {
  ordered_json out = ordered_json::object();
  for (const std::string& m : metrics) out[m] = steered[m].get<double>() - unsteered[m].get<double>();
  return out;
}

// The table columns a steered run adds: ",steered_<m>...,diff_<m>...".
std::string steered_header(const std::vector<std::string>& metrics) {
  std::string out;
  for (const char* prefix : {"steered_", "diff_"})
    for (const std::string& m : metrics) out.append(",").append(prefix).append(m);
  return out;
}

std::string steered_cells(const ordered_json& steered, const ordered_json& diff,
                          const std::vector<std::string>& metrics) {
  std::string out;
  for (const ordered_json* j : {&steered, &diff})
    for (const std::string& m : metrics) out.append(",").append(number((*j)[m]));
  return out;
}

// "  steered  acc 0.5100 (+0.0200)  ...".
void print_steered(const ordered_json& steered, const ordered_json& diff, const std::vector<std::string>& metrics) {
  std::printf("  steered");
  for (const std::string& m : metrics)
    std::printf("  %s %s (%s)", m.c_str(), shown(steered[m]).c_str(),
                shown(diff[m], "%+.4f").c_str());
  std::printf("\n");
}

// Routes the model's later forwards with `steering`, or without any intervention when null.
void set_steering(OlmoeForCausalLM& model, const eval::Steering* steering) {
  RouterHooks hooks = model.router_hooks();
  hooks.intervene = steering ? eval::steering_intervention(*steering) : RouterIntervention();
  model.set_router_hooks(hooks);
}

// A progress line for one language's scoring, drawn from the scorer's callback; `bar` must
// outlive the scoring.
std::function<void(int64_t, int64_t)> progress_of(std::optional<Progress>& bar, const std::string& label) {
  return [&bar, label](int64_t done, int64_t total) {
    if (!bar) bar.emplace(label, total, "seq");
    bar->update(done);
  };
}

int run_proxies(const Args& args) {
  const po::variables_map vm = parse("proxies", proxies_options(), args);
  if (vm.count("help")) {
    std::cout << proxies_usage();
    return 0;
  }
  const std::string corpus = need(vm, "proxies", "corpus"), out = need(vm, "proxies", "out");
  eval::ProxyOptions o;
  o.items = vm["items"].as<int64_t>();
  o.seed = vm["seed"].as<uint64_t>();
  o.passage_sentences = vm["passage-sentences"].as<int64_t>();
  o.min_words = vm["min-words"].as<int64_t>();
  o.max_words = vm["max-words"].as<int64_t>();
  if (o.items < 1 || o.passage_sentences < 1)
    usage_error("proxies", "--items and --passage-sentences must be positive");
  if (o.min_words < 3 || o.max_words < o.min_words)
    usage_error("proxies", "--min-words must be at least 3 and at most --max-words");
  const auto sources = document_paths("--corpus", corpus, language_flag(vm));
  const auto counts = eval::write_proxy_benchmarks(sources, out, o);
  std::printf("%-8s %6s %10s %6s %10s\n", "language", "pages", "sentences", "pairs", "questions");
  for (const auto& [lang, c] : counts)
    std::printf("%-8s %6lld %10lld %6lld %10lld\n", lang.c_str(), static_cast<long long>(c.pages),
                static_cast<long long>(c.sentences), static_cast<long long>(c.pairs),
                static_cast<long long>(c.questions));
  std::printf(
      "wrote PROXY sets (not MultiBLiMP or Belebele) to %s: proxy_multiblimp/, proxy_belebele/, "
      "proxies.json\n",
      out.c_str());
  return 0;
}

int run_run(const Args& args) {
  const po::variables_map vm = parse("run", run_options(), args);
  if (vm.count("help")) {
    std::cout << run_usage();
    return 0;
  }
  const std::string model_dir = need(vm, "run", "model");
  const fs::path out = need(vm, "run", "out");
  const Device device = selected_device("benchmark", vm);
  if (!vm.count("multiblimp") && !vm.count("belebele") && !vm.count("perplexity"))
    usage_error("run", "give at least one of --multiblimp, --belebele and --perplexity");
  eval::BelebeleOptions bo;
  bo.shots = vm["shots"].as<int64_t>();
  if (vm.count("shot-seed")) bo.shot_seed = vm["shot-seed"].as<uint64_t>();
  try {
    bo.prompt = eval::parse_belebele_prompt(vm["prompt"].as<std::string>());
  } catch (const Error& e) {
    usage_error("run", std::string("--prompt: ") + e.what());
  }
  eval::PerplexityOptions pp;
  if (vm.count("seq-len")) pp.seq_len = vm["seq-len"].as<int64_t>();
  pp.max_tokens = vm["max-tokens"].as<int64_t>();
  eval::BatchScoreOptions batch;
  batch.max_batch_tokens = vm["batch-tokens"].as<int64_t>();
  if (bo.shots < 0) usage_error("run", "--shots must not be negative");
  if (pp.max_tokens < 1 || batch.max_batch_tokens < 1 || (vm.count("seq-len") && pp.seq_len < 2))
    usage_error("run", "--max-tokens and --batch-tokens must be positive, --seq-len at least 2");
  const std::optional<std::vector<std::string>> languages = language_flag(vm);
  // Every input is found before the model is loaded, so a typo fails at once.
  std::map<std::string, std::string> multiblimp, belebele, perplexity;
  if (vm.count("multiblimp"))
    multiblimp = benchmark_files("--multiblimp", vm["multiblimp"].as<std::string>(), languages, true);
  if (vm.count("belebele"))
    belebele = benchmark_files("--belebele", vm["belebele"].as<std::string>(), languages, false);
  if (vm.count("perplexity"))
    perplexity = document_paths("--perplexity", vm["perplexity"].as<std::string>(), languages);
  const std::string steer_file = vm.count("steer") ? vm["steer"].as<std::string>() : "";
  if (!steer_file.empty()) eval::read_steering(steer_file);

  std::unique_ptr<OlmoeForCausalLM> model = load_olmoe(model_dir);
  std::optional<data::Tokenizer> tokenizer = load_tokenizer(vm);
  if (!tokenizer) throw Error("benchmark: " + model_dir + " has no tokenizer.json; pass --tokenizer FILE");
  model->to(device);
  std::optional<eval::Steering> steering;
  if (!steer_file.empty())
    steering = eval::read_steering(steer_file, {model->config().num_hidden_layers, model->config().num_experts});
  // Each scorer runs unsteered, then steered when a steering is given, with `label` on its
  // progress line.
  auto variants = [&](const std::string& label, const auto& score) {
    using Result = decltype(score(std::function<void(int64_t, int64_t)>()));
    std::vector<const eval::Steering*> runs = {nullptr};
    if (steering) runs.push_back(&*steering);
    std::vector<Result> out;
    for (const eval::Steering* s : runs) {
      set_steering(*model, s);
      std::optional<Progress> bar;
      out.push_back(score(progress_of(bar, label + (s ? " steered" : ""))));
      if (bar) bar->finish();
    }
    set_steering(*model, nullptr);
    return out;
  };
  batch.start_id = vm.count("start-id") ? vm["start-id"].as<int32_t>()
                                        : eval::start_token_id(model->config(), &*tokenizer);
  const int64_t vocab = model->config().vocab_size;
  if (*batch.start_id < 0 || *batch.start_id >= vocab)
    usage_error("run", "--start-id " + std::to_string(*batch.start_id) +
                           " is not a token id of the model (0 to " + std::to_string(vocab - 1) +
                           ")");
  bo.scoring.batch = batch;
  pp.scoring.batch = batch;
  eval::ScoringOptions so{batch};

  ordered_json results = {{"model", model_dir}, {"start_id", *batch.start_id}};
  if (steering) results["steering"] = {{"file", steer_file}, {"steering", steering->to_json()}};
  const std::string steered_acc = steering ? steered_header(kAccuracies) : "";
  fs::create_directories(out);
  if (!multiblimp.empty()) {
    std::ostringstream table, phenomena;
    table << "language,proxy,pairs,acc,acc_norm,acc_token_norm,skipped" << steered_acc << "\n";
    phenomena << "language,proxy,phenomenon,pairs,acc,acc_norm,acc_token_norm" << steered_acc << "\n";
    ordered_json section = ordered_json::object();
    for (const auto& [lang, file] : multiblimp) {
      const std::vector<eval::MinimalPair> pairs = eval::read_multiblimp(file);
      const auto rs = variants("multiblimp " + lang, [&](std::function<void(int64_t, int64_t)> progress) {
        eval::ScoringOptions o = so;
        o.batch.progress = std::move(progress);
        return eval::score_multiblimp(*model, *tokenizer, pairs, o);
      });
      const eval::MultiblimpResult& r = rs[0];
      ordered_json j = {{"file", file}};
      j.update(r.to_json());
      if (steering) {
        j["steered"] = rs[1].to_json();
        j["steering_difference"] = difference(j, j["steered"], kAccuracies);
      }
      section[lang] = j;
      const std::string proxy = r.proxy ? "true" : "false";
      table << lang << "," << proxy << "," << r.all.items << "," << number(j["acc"]) << ","
            << number(j["acc_norm"]) << "," << number(j["acc_token_norm"]) << "," << r.skipped;
      if (steering) table << steered_cells(j["steered"], j["steering_difference"], kAccuracies);
      table << "\n";
      for (const auto& [name, p] : j["phenomena"].items()) {
        phenomena << lang << "," << proxy << "," << name << "," << p["items"].get<int64_t>() << ","
                  << number(p["acc"]) << "," << number(p["acc_norm"]) << "," << number(p["acc_token_norm"]);
        if (steering) {
          const ordered_json& sp = j["steered"]["phenomena"][name];
          phenomena << steered_cells(sp, difference(p, sp, kAccuracies), kAccuracies);
        }
        phenomena << "\n";
      }
      std::printf(
          "multiblimp%s %-8s pairs %5lld  acc %s  acc_norm %s  acc_token_norm %s  skipped %lld\n",
          r.proxy ? " (PROXY)" : "", lang.c_str(), static_cast<long long>(r.all.items),
          shown(j["acc"]).c_str(), shown(j["acc_norm"]).c_str(), shown(j["acc_token_norm"]).c_str(),
          static_cast<long long>(r.skipped));
      if (steering) print_steered(j["steered"], j["steering_difference"], kAccuracies);
    }
    results["multiblimp"] = section;
    write_file_atomically((out / "multiblimp.csv").string(), table.str());
    write_file_atomically((out / "multiblimp_phenomena.csv").string(), phenomena.str());
  }
  if (!belebele.empty()) {
    std::ostringstream table;
    table << "language,proxy,prompt,shots,questions,acc,acc_norm,acc_token_norm,truncated,skipped"
          << steered_acc << "\n";
    ordered_json section = ordered_json::object();
    for (const auto& [lang, file] : belebele) {
      const std::vector<eval::BelebeleItem> items = eval::read_belebele(file);
      const auto rs = variants("belebele " + lang, [&](std::function<void(int64_t, int64_t)> progress) {
        eval::BelebeleOptions o = bo;
        o.scoring.batch.progress = std::move(progress);
        return eval::score_belebele(*model, *tokenizer, items, o);
      });
      const eval::BelebeleResult& r = rs[0];
      ordered_json j = {{"file", file}};
      j.update(r.to_json(bo));
      if (steering) {
        j["steered"] = rs[1].to_json(bo);
        j["steering_difference"] = difference(j, j["steered"], kAccuracies);
      }
      section[lang] = j;
      table << lang << "," << (r.proxy ? "true" : "false") << "," << eval::belebele_prompt_name(bo.prompt)
            << "," << bo.shots << "," << r.accuracy.items << "," << number(j["acc"]) << ","
            << number(j["acc_norm"]) << "," << number(j["acc_token_norm"]) << "," << r.truncated << ","
            << r.skipped;
      if (steering) table << steered_cells(j["steered"], j["steering_difference"], kAccuracies);
      table << "\n";
      std::printf(
          "belebele%s %-8s questions %5lld  %lld-shot  acc %s  acc_norm %s  truncated %lld  "
          "skipped %lld\n",
          r.proxy ? " (PROXY)" : "", lang.c_str(), static_cast<long long>(r.accuracy.items),
          static_cast<long long>(bo.shots), shown(j["acc"]).c_str(), shown(j["acc_norm"]).c_str(),
          static_cast<long long>(r.truncated), static_cast<long long>(r.skipped));
      if (steering) print_steered(j["steered"], j["steering_difference"], kAccuracies);
    }
    results["belebele"] = section;
    write_file_atomically((out / "belebele.csv").string(), table.str());
  }
  if (!perplexity.empty()) {
    std::ostringstream table;
    table << "language,documents,tokens,nll,ppl,bpb" << (steering ? steered_header(kPerplexities) : "")
          << "\n";
    ordered_json section = ordered_json::object();
    for (const auto& [lang, path] : perplexity) {
      const auto rs = variants("perplexity " + lang, [&](std::function<void(int64_t, int64_t)> progress) {
        eval::PerplexityOptions o = pp;
        o.scoring.batch.progress = std::move(progress);
        return eval::score_perplexity(*model, *tokenizer, path, o);
      });
      const eval::PerplexityResult& r = rs[0];
      ordered_json j = {{"path", path}};
      j.update(r.to_json());
      if (steering) {
        j["steered"] = rs[1].to_json();
        j["steering_difference"] = difference(j, j["steered"], kPerplexities);
      }
      section[lang] = j;
      table << lang << "," << r.documents << "," << r.tokens << "," << number(j["nll"]) << ","
            << number(j["ppl"]) << "," << number(j["bpb"]);
      if (steering) table << steered_cells(j["steered"], j["steering_difference"], kPerplexities);
      table << "\n";
      std::printf("perplexity %-8s tokens %8lld  nll %s  ppl %s  bpb %s\n", lang.c_str(),
                  static_cast<long long>(r.tokens), shown(j["nll"]).c_str(),
                  shown(j["ppl"], "%.2f").c_str(), shown(j["bpb"]).c_str());
      if (steering) print_steered(j["steered"], j["steering_difference"], kPerplexities);
    }
    results["perplexity"] = section;
    write_file_atomically((out / "perplexity.csv").string(), table.str());
  }
  write_file_atomically((out / "results.json").string(), results.dump(1) + "\n");
  std::printf("wrote results.json and the tables to %s\n", out.string().c_str());
  return 0;
}

int run_steer(const Args& args) {
  const po::variables_map vm = parse("steer", steer_options(), args);
  if (vm.count("help")) {
    std::cout << steer_usage();
    return 0;
  }
  const std::string path = need(vm, "steer", "analysis"), out = need(vm, "steer", "out");
  eval::SteeringFromAnalysisOptions o;
  o.language = vm["language"].as<std::string>();
  o.reference = vm["reference"].as<std::string>();
  o.threshold.tau = vm["tau"].as<double>();
  o.threshold.num_std = vm["std"].as<double>();
  o.delta = vm["delta"].as<double>();
  o.lambda = vm["lambda"].as<double>();
  const std::string mode = vm["mode"].as<std::string>();
  if (mode != "hard" && mode != "soft") usage_error("steer", "--mode must be hard or soft, got '" + mode + "'");
  o.mode = mode == "hard" ? eval::SteeringMode::Hard : eval::SteeringMode::Soft;
  if (vm.count("layers")) {
    try {
      o.layers = eval::parse_layer_range(vm["layers"].as<std::string>());
    } catch (const Error& e) {
      usage_error("steer", std::string("--layers ") + e.what());
    }
  }
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path);
  const nlohmann::json analysis = nlohmann::json::parse(in, nullptr, false);
  if (analysis.is_discarded()) throw Error(path + ": not JSON (expected moegrad analyze's routing.json)");
  const eval::Steering steering = eval::steering_from_analysis(JsonReader(analysis, path), o);
  if (fs::path(out).has_parent_path()) fs::create_directories(fs::path(out).parent_path());
  write_file_atomically(out, steering.to_json().dump(1) + "\n");
  int64_t promoted = 0;
  for (const auto& [layer, s] : steering.layers) promoted += int64_t(s.promote.size());
  std::printf("wrote %s: %lld promoted experts over %zu layers\n", out.c_str(),
              static_cast<long long>(promoted), steering.layers.size());
  if (promoted == 0)
    std::printf("note: no expert passes the threshold; lower --tau (a small model's frequencies "
                "differ less)\n");
  return 0;
}

const std::vector<Subcommand> kSubcommands = {
    {"run", "score MultiBLiMP, Belebele and held-out perplexity per language", run_run},
    {"proxies", "make PROXY sets in their formats from held-out text", run_proxies},
    {"steer", "write a router steering file from a routing analysis", run_steer},
};

}  // namespace

std::string benchmark_usage() {
  std::ostringstream os;
  os << "Usage: moegrad benchmark <subcommand> [options]\n\nSubcommands:\n";
  os << subcommand_table(kSubcommands);
  os << "\n" << run_usage() << "\n" << proxies_usage() << "\n" << steer_usage();
  return os.str();
}

int run_benchmark(const Args& args) {
  return run_subcommand("benchmark", kSubcommands, args, benchmark_usage());
}

std::string eval_usage() { return "'moegrad eval' is 'moegrad benchmark run':\n\n" + run_usage(); }

int run_eval(const Args& args) {
  Args run = {"run"};
  run.insert(run.end(), args.begin(), args.end());
  return run_benchmark(run);
}

}  // namespace moegrad::app
