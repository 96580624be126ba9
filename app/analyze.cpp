// moegrad analyze: routing statistics of a model on held-out token shards, and the analyses of
// the papers over them (eval/routing_analysis.h), as JSON, CSV tables and SVG figures.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "app/cli.h"
#include "app/model_args.h"
#include "core/io/atomic_file.h"
#include "core/split_list.h"
#include "eval/routing_analysis.h"
#include "eval/routing_collect.h"
#include "eval/routing_figures.h"
#include "eval/vocab_overlap.h"
#include "moe/checkpoint.h"

namespace moegrad::app {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

po::options_description analyze_options() {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help and exit")(
      "model", po::value<std::string>()->value_name("DIR"), "HF-format model directory; required")(
      "data", po::value<std::string>()->value_name("DIR"),
      "folder of <LANG>.shard files (moegrad data build), e.g. held-out text; required")(
      "out", po::value<std::string>()->value_name("DIR"), "folder for the results; required")(
      "languages", po::value<std::string>()->value_name("a,b,..."),
      "languages to analyse (default: every shard in --data)")(
      "seq-len", po::value<int64_t>()->default_value(2048)->value_name("N"),
      "window length in tokens (windows never cross documents); at most the model's "
      "max_position_embeddings")(
      "tokens", po::value<int64_t>()->default_value(1000000)->value_name("N"),
      "tokens routed per language at most")(
      "batch-size", po::value<int64_t>()->default_value(8)->value_name("N"),
      "windows per forward")(
      "english", po::value<std::string>()->default_value("en")->value_name("LANG"),
      "reference language of the divergences")(
      "alpha", po::value<double>()->default_value(0.01),
      "activation gap at which an expert is language-specific")(
      "shared-k", po::value<int64_t>()->default_value(5)->value_name("K"),
      "shared experts per layer")(
      "parents",
      po::value<std::string>()->default_value("ca:es,et:fi,mr:hi,sk:cs,uk:ru,ur:ar,nl:en"),
      "child:parent pairs: a low-resource language borrows its parent's experts and is left "
      "out of the shared-expert average; 'none' for no pairs")(
      "overlap-min-count", po::value<int64_t>()->default_value(2)->value_name("N"),
      "vocabulary overlap: a token type counts as used by a language from N occurrences in "
      "its routed text (so that one stray token does not make a type shared)");
  add_device_option(options);
  return options;
}

std::string number(const json& v) { return v.is_number() ? csv_number(v.get<double>()) : ""; }

// layers.csv: one row per layer and language; summary.csv: one row per layer; experts.csv: the
// language-specific and shared experts of each layer; overlap.csv: one row per language pair.
void write_tables(const fs::path& out, const json& a) {
  std::ostringstream layers, summary, experts;
  layers << "layer,language,entropy,jsd_from_english,consistency,aligned_jsd,"
            "aligned_normalized_jsd\n";
  summary << "layer,jsd_mean,jsd_mean_without_english,specialization\n";
  experts << "layer,kind,language,expert\n";
  for (const json& l : a["per_layer"]) {
    const int64_t layer = l["layer"].get<int64_t>();
    for (const json& lang : a["languages"]) {
      const std::string name = lang.get<std::string>();
      const json& aligned = a["aligned"].value(name, json::object());
      layers << layer << "," << name << "," << number(l["entropy"][name]) << ","
             << number(l["jsd_from_english"].value(name, json())) << ","
             << number(l["consistency"][name]) << ","
             << (aligned.contains("jsd") ? number(aligned["jsd"][size_t(layer)]) : "") << ","
             << (aligned.contains("jsd") ? number(aligned["normalized_jsd"][size_t(layer)]) : "")
             << "\n";
    }
    summary << layer << "," << number(l["jsd_mean"]) << ","
            << number(l["jsd_mean_without_english"]) << "," << number(l["specialization"]) << "\n";
    for (const auto& [lang, list] : l["language_specific"].items())
      for (const json& e : list) experts << layer << ",specific," << lang << "," << e << "\n";
    for (const json& e : l["shared"]) experts << layer << ",shared,," << e << "\n";
  }
  std::ostringstream overlap;
  overlap << "a,b,jaccard,weighted,last_layer_jsd\n";
  for (const json& p : a["vocabulary_overlap"]["pairs"])
    overlap << p["a"].get<std::string>() << "," << p["b"].get<std::string>() << ","
            << number(p["jaccard"]) << "," << number(p["weighted"]) << ","
            << number(p["last_layer_jsd"]) << "\n";
  write_file_atomically((out / "overlap.csv").string(), overlap.str());
  write_file_atomically((out / "layers.csv").string(), layers.str());
  write_file_atomically((out / "summary.csv").string(), summary.str());
  write_file_atomically((out / "experts.csv").string(), experts.str());
}

}  // namespace

std::string analyze_usage() {
  std::ostringstream os;
  os << "Usage: moegrad analyze --model DIR --data DIR --out DIR [options]\n\n"
        "Routes each language's documents of --data through the model in windows and counts,\n"
        "per language, layer and expert, the top-k selections and router probabilities. Writes\n"
        "to --out: routing_stats.json (the counts), routing.json (per layer: usage, entropy,\n"
        "JSD between languages and from English, the specialisation score IG(L;E)/H(L),\n"
        "routing consistency, expert gaps, language-specific and shared experts; and, over\n"
        "documents present in English too, JSD and entropy-normalised JSD from English per\n"
        "layer; the vocabulary overlap of each pair of languages, Jaccard over the token types\n"
        "each uses and frequency-weighted, with its Pearson correlation to the last layer's\n"
        "JSD), and the tables layers.csv, summary.csv, experts.csv and overlap.csv; and in\n"
        "figures/ as SVG: divergence from English, entropy, specialisation and mean JSD per\n"
        "layer, expert usage heatmaps of the first, middle and last layer, the last layer's JSD\n"
        "between languages, and vocabulary overlap against that JSD.\n\n"
     << analyze_options();
  return os.str();
}

int run_analyze(const Args& args) {
  po::variables_map vm = parse_options("analyze", analyze_options(), args);
  if (vm.count("help")) {
    std::cout << analyze_usage();
    return 0;
  }
  const std::string model_dir = required(vm, "analyze", "model");
  const std::string data_dir = required(vm, "analyze", "data");
  const fs::path out = required(vm, "analyze", "out");
  const Device device = selected_device("analyze", vm);
  eval::RoutingAnalysisOptions ao;
  ao.english = vm["english"].as<std::string>();
  ao.alpha = vm["alpha"].as<double>();
  ao.shared_k = vm["shared-k"].as<int64_t>();
  try {
    ao.parents = eval::parse_parents(vm["parents"].as<std::string>());
  } catch (const Error& e) {
    throw UsageError("analyze", std::string("--parents: ") + e.what());
  }
  if (ao.shared_k < 0) throw UsageError("analyze", "--shared-k must be >= 0");
  if (!(std::isfinite(ao.alpha) && ao.alpha >= 0))
    throw UsageError("analyze", "--alpha must be a finite number >= 0");
  const int64_t min_count = vm["overlap-min-count"].as<int64_t>();
  if (min_count < 1) throw UsageError("analyze", "--overlap-min-count must be at least 1");
  eval::RoutingCollectOptions co;
  co.seq_len = vm["seq-len"].as<int64_t>();
  co.max_tokens = vm["tokens"].as<int64_t>();
  co.batch_size = vm["batch-size"].as<int64_t>();
  if (co.seq_len < 1 || co.max_tokens < 1 || co.batch_size < 1)
    throw UsageError("analyze", "--seq-len, --tokens and --batch-size must be positive");

  std::vector<std::string> languages =
      vm.count("languages") ? split_list(vm["languages"].as<std::string>(), ',')
                            : data::shard_languages(data_dir);
  MOEGRAD_CHECK(!languages.empty(), data_dir, " holds no <LANG>.shard files");
  std::vector<data::TokenShard> shards;
  for (const std::string& lang : languages) {
    const fs::path p = fs::path(data_dir) / (lang + ".shard");
    MOEGRAD_CHECK(fs::is_regular_file(p), "--languages: no shard for '", lang, "' (",
                  p.string(), " does not exist)");
    shards.push_back(data::TokenShard::open(p.string()));
  }
  std::unique_ptr<OlmoeForCausalLM> model = load_olmoe(model_dir);
  model->to(device);
  const OlmoeConfig& c = model->config();
  eval::RoutingStats stats(c.num_hidden_layers, c.num_experts, c.num_experts_per_tok);
  eval::collect_routing(*model, shards, co, stats);
  json analysis = eval::analyze_routing(stats, ao);
  std::map<std::string, eval::TypeCounts> types;
  for (const data::TokenShard& s : shards)
    types[s.language()] = eval::count_types(s, co.max_tokens);
  analysis["vocabulary_overlap"] = eval::overlap_analysis(types, analysis, min_count);

  fs::create_directories(out);
  write_file_atomically((out / "routing_stats.json").string(), stats.to_json().dump() + "\n");
  write_file_atomically((out / "routing.json").string(), analysis.dump(1) + "\n");
  write_tables(out, analysis);
  const std::map<std::string, std::string> figures = eval::routing_figures(analysis);
  fs::create_directories(out / "figures");
  for (const auto& [name, svg] : figures)
    write_file_atomically((out / "figures" / name).string(), svg);

  std::printf("%-6s %10s %10s %14s\n", "layer", "jsd_mean", "jsd_no_en", "specialization");
  for (const json& l : analysis["per_layer"])
    std::printf("%-6lld %10.4f %10.4f %14.4f\n", static_cast<long long>(l["layer"].get<int64_t>()),
                l["jsd_mean"].get<double>(), l["jsd_mean_without_english"].get<double>(),
                l["specialization"].get<double>());
  const json& r = analysis["vocabulary_overlap"]["pearson_with_last_layer_jsd"];
  auto r_text = [](const json& v) {
    const std::string text = number(v);
    return text.empty() ? std::string("undefined") : text;
  };
  std::printf("vocabulary overlap vs last-layer JSD, Pearson r: jaccard %s, weighted %s\n",
              r_text(r["jaccard"]).c_str(), r_text(r["weighted"]).c_str());
  std::printf("wrote routing_stats.json, routing.json, the tables (layers, summary, experts, "
              "overlap .csv) and %zu figures (figures/*.svg) to %s\n", figures.size(),
              out.string().c_str());
  return 0;
}

}  // namespace moegrad::app
