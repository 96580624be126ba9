// moegrad data: token shards from text (build), a BPE tokenizer from text (train-tokenizer), and
// what a shard holds (info).
#include <omp.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "app/cli.h"
#include "app/progress.h"
#include "core/error.h"
#include "core/io/atomic_file.h"
#include "data/bpe_trainer.h"
#include "data/document_source.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"

namespace moegrad::app {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;  // shards.json keeps the languages in input order

// Documents are tokenized in batches of about this many bytes, the batch split over threads
// and written in order, so the shards are the same whatever the thread count.
constexpr size_t kBatchBytes = 4 << 20;
constexpr size_t kBatchDocuments = 4096;

const char* const kDefaultEos = "<|endoftext|>";

po::options_description build_options() {
  po::options_description options("Options of 'data build'");
  options.add_options()("help,h", "show this help and exit")(
      "tokenizer", po::value<std::string>()->value_name("FILE"), "tokenizer.json to tokenize with; required")(
      "input", po::value<std::vector<std::string>>()->value_name("LANG=PATH"),
      "documents of language LANG, from a folder of .txt files (one document each), "
      "a .txt file or a .jsonl file ({\"text\": ..., \"id\": ...} a line); repeat for more "
      "languages or more inputs of one language; required")(
      "out", po::value<std::string>()->value_name("DIR"), "folder for <LANG>.shard and shards.json; required")(
      "eos", po::bool_switch(),
      "end every document with the --eos-token id (the training loader adds its own "
      "separator: leave this off for moegrad train)")(
      "eos-token", po::value<std::string>()->default_value(kDefaultEos)->value_name("TOKEN"),
      "the token --eos appends; must be in the tokenizer")(
      "threads", po::value<int>()->default_value(omp_get_max_threads())->value_name("N"),
      "tokenizer threads (the output does not depend on it)");
  return options;
}

po::options_description train_tokenizer_options() {
  po::options_description options("Options of 'data train-tokenizer'");
  options.add_options()("help,h", "show this help and exit")(
      "input", po::value<std::vector<std::string>>()->value_name("PATH"),
      "documents to train on, as for 'data build' but without LANG=; repeatable; required")(
      "vocab-size", po::value<int>()->value_name("N"),
      "vocabulary size, special tokens and the 256 byte tokens included; required")(
      "out", po::value<std::string>()->value_name("FILE"), "tokenizer.json to write; required")(
      "special-token", po::value<std::vector<std::string>>()->default_value({kDefaultEos}, kDefaultEos)->value_name("TOKEN"),
      "special token, ids 0.. in the order given; repeatable")(
      "min-frequency", po::value<int64_t>()->default_value(0)->value_name("N"),
      "stop merging when the most frequent pair is rarer than this");
  return options;
}

po::options_description shard_info_options() {
  po::options_description options("Options of 'data info'");
  options.add_options()("help,h", "show this help and exit");
  return options;
}

std::string build_usage() {
  std::ostringstream os;
  os << "Usage: moegrad data build --tokenizer FILE --input LANG=PATH [--input LANG=PATH ...]\n"
        "                          --out DIR [--eos] [--threads N]\n\n"
        "Tokenizes the documents of each language into DIR/<LANG>.shard (tokens, a document\n"
        "index with each document's name, checksums) and writes DIR/shards.json, a summary.\n"
        "Inputs are streamed: a large JSONL file is never held in memory. Empty documents are\n"
        "skipped and counted.\n\n"
     << build_options();
  return os.str();
}

std::string train_tokenizer_usage() {
  std::ostringstream os;
  os << "Usage: moegrad data train-tokenizer --input PATH [--input PATH ...] --vocab-size N\n"
        "                                    --out tokenizer.json\n\n"
        "Trains a byte-level BPE tokenizer (NFC, GPT-2 pre-tokenizer, HF BpeTrainer's merges)\n"
        "on the documents, each one a training text, and writes an HF tokenizer.json.\n\n"
     << train_tokenizer_options();
  return os.str();
}

std::string shard_info_usage() {
  std::ostringstream os;
  os << "Usage: moegrad data info SHARD [SHARD ...]\n\n"
        "Checks each token shard (sizes, offsets, checksums) and prints its header.\n\n"
     << shard_info_options();
  return os.str();
}

// A usage error of subcommand `sub`, reported as one of `moegrad data`.
[[noreturn]] void usage_error(const std::string& sub, const std::string& message) {
  throw UsageError("data", sub + ": " + message);
}

po::variables_map parse(const std::string& sub, const po::options_description& options,
                        const Args& args) {
  try {
    return parse_options("data", options, args);
  } catch (const UsageError& e) {
    usage_error(sub, e.what());
  }
}

std::string required(const po::variables_map& vm, const std::string& sub, const char* flag) {
  if (!vm.count(flag)) usage_error(sub, std::string("--") + flag + " is required");
  return vm[flag].as<std::string>();
}

std::vector<std::string> required_list(const po::variables_map& vm, const std::string& sub,
                                       const char* flag) {
  if (!vm.count(flag)) usage_error(sub, std::string("--") + flag + " is required");
  return vm[flag].as<std::vector<std::string>>();
}

// The inputs of one language, in the order given.
struct LanguageInputs {
  std::string language;
  std::vector<std::string> paths;
};

// LANG names a file (<LANG>.shard), so it is kept to letters, digits, '-' and '_'.
std::vector<LanguageInputs> parse_inputs(const std::vector<std::string>& specs) {
  std::vector<LanguageInputs> out;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    const std::string lang = spec.substr(0, eq);
    const bool lang_ok =
        !lang.empty() && std::all_of(lang.begin(), lang.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
        });
    if (eq == std::string::npos || !lang_ok || eq + 1 == spec.size()) {
      usage_error("build", "--input '" + spec +
                               "' is not LANG=PATH (LANG: letters, digits, '-', '_'; e.g. "
                               "de=corpora/manpages/de/train)");
    }
    auto it = std::find_if(out.begin(), out.end(), [&](const LanguageInputs& l) { return l.language == lang; });
    if (it == out.end()) it = out.insert(out.end(), {lang, {}});
    it->paths.push_back(spec.substr(eq + 1));
  }
  return out;
}

std::string count(int64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// Tokenizes batches of documents on several threads, one tokenizer copy each (the shared
// tokenizer's piece cache sits behind a mutex).
class ParallelEncoder {
 public:
  ParallelEncoder(const data::Tokenizer& tokenizer, int threads) {
    for (int t = 0; t < threads; ++t) tokenizers_.emplace_back(tokenizer);
  }

  void encode(const std::vector<data::Document>& docs, std::vector<std::vector<int32_t>>& ids) {
    ids.resize(docs.size());
    std::exception_ptr error;
    const auto n = static_cast<int64_t>(docs.size());
#pragma omp parallel num_threads(static_cast<int>(tokenizers_.size()))
    {
      const data::Tokenizer& tok = tokenizers_[static_cast<size_t>(omp_get_thread_num())];
#pragma omp for schedule(dynamic, 1)
      for (int64_t i = 0; i < n; ++i) {
        try {
          ids[static_cast<size_t>(i)] = tok.encode(docs[static_cast<size_t>(i)].text);
        } catch (...) {
#pragma omp critical
          if (!error) error = std::current_exception();
        }
      }
    }
    if (error) std::rethrow_exception(error);
  }

 private:
  std::vector<data::Tokenizer> tokenizers_;
};

struct ShardStats {
  int64_t documents = 0, tokens = 0, skipped_empty = 0;
};

// Streams the documents of `sources` through the encoder into one shard, in batches.
ShardStats build_shard(const fs::path& path, const std::string& lang, int64_t vocab_size,
                       std::vector<data::DocumentSource>& sources, ParallelEncoder& encoder,
                       std::optional<int32_t> eos, Progress& progress, int64_t& bytes_done) {
  data::TokenShardWriter writer(path.string(), lang, vocab_size);
  ShardStats stats;
  std::vector<data::Document> batch;
  std::vector<std::vector<int32_t>> ids;
  for (data::DocumentSource& source : sources) {
    for (bool more = true; more;) {
      batch.clear();
      size_t batch_bytes = 0;
      data::Document doc;
      while (batch_bytes < kBatchBytes && batch.size() < kBatchDocuments && (more = source.next(doc))) {
        batch_bytes += doc.text.size();
        batch.push_back(std::move(doc));
      }
      encoder.encode(batch, ids);
      for (size_t i = 0; i < batch.size(); ++i) {
        if (eos) ids[i].push_back(*eos);
        writer.add_document(ids[i], batch[i].name);
      }
      progress.update(bytes_done + source.bytes_read(),
                      lang + ": " + count(writer.num_documents(), "document") + ", " +
                          count(writer.num_tokens(), "token"));
    }
    bytes_done += source.total_bytes();
    stats.skipped_empty += source.skipped_empty();
  }
  writer.finish();
  stats.documents = writer.num_documents();
  stats.tokens = writer.num_tokens();
  return stats;
}

int run_build(const Args& args) {
  po::variables_map vm = parse("build", build_options(), args);
  if (vm.count("help")) {
    std::cout << build_usage();
    return 0;
  }
  const std::string tokenizer_path = required(vm, "build", "tokenizer");
  const std::vector<LanguageInputs> languages = parse_inputs(required_list(vm, "build", "input"));
  const fs::path out_dir = required(vm, "build", "out");
  const int threads = vm["threads"].as<int>();
  if (threads < 1) usage_error("build", "--threads must be at least 1, got " + std::to_string(threads));

  const data::Tokenizer tokenizer = data::Tokenizer::from_file(tokenizer_path);
  const int64_t vocab_size = tokenizer.vocab_size();
  const std::string& eos_token = vm["eos-token"].as<std::string>();
  std::optional<int32_t> eos;
  if (vm["eos"].as<bool>()) {
    eos = tokenizer.token_to_id(eos_token);
    MOEGRAD_CHECK(eos, "data build: --eos: ", tokenizer_path, " has no token '", eos_token,
                  "' (name another with --eos-token)");
  }
  // Every input is opened before any work, so a wrong path fails at once.
  std::vector<std::vector<data::DocumentSource>> sources(languages.size());
  int64_t total_bytes = 0;
  for (size_t li = 0; li < languages.size(); ++li) {
    for (const std::string& path : languages[li].paths) {
      total_bytes += sources[li].emplace_back(path).total_bytes();
    }
  }
  fs::create_directories(out_dir);

  const auto start = std::chrono::steady_clock::now();
  ParallelEncoder encoder(tokenizer, threads);
  Progress progress("data build", total_bytes, "B");
  int64_t bytes_done = 0;
  std::vector<ShardStats> stats;
  ShardStats all;
  ordered_json summary_languages = ordered_json::object();
  for (size_t li = 0; li < languages.size(); ++li) {
    const std::string& lang = languages[li].language;
    const ShardStats s = build_shard(out_dir / (lang + ".shard"), lang, vocab_size, sources[li], encoder,
                                     eos, progress, bytes_done);
    stats.push_back(s);
    all.documents += s.documents;
    all.tokens += s.tokens;
    summary_languages[lang] = {{"shard", lang + ".shard"},     {"inputs", languages[li].paths},
                               {"documents", s.documents},     {"tokens", s.tokens},
                               {"skipped_empty", s.skipped_empty}};
  }
  progress.finish(count(all.documents, "document") + ", " + count(all.tokens, "token"));

  const ordered_json summary = {
      {"tokenizer", fs::absolute(tokenizer_path).lexically_normal().string()},
      {"vocab_size", vocab_size},
      {"eos", eos ? ordered_json(eos_token) : ordered_json(nullptr)},
      {"languages", summary_languages}};
  const std::string text = summary.dump(2) + "\n";
  AtomicFile file((out_dir / "shards.json").string());
  file.write(text.data(), text.size());
  file.commit();

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-8s %10s %12s %8s %11s\n", "language", "documents", "tokens", "empty", "tokens/doc");
  for (size_t li = 0; li < languages.size(); ++li) {
    const ShardStats& s = stats[li];
    std::printf("%-8s %10lld %12lld %8lld %11.1f\n", languages[li].language.c_str(),
                static_cast<long long>(s.documents), static_cast<long long>(s.tokens),
                static_cast<long long>(s.skipped_empty),
                s.documents ? static_cast<double>(s.tokens) / static_cast<double>(s.documents) : 0.0);
  }
  std::printf("wrote %s and shards.json to %s in %.1f s (%.1f MB/s)\n",
              count(static_cast<int64_t>(languages.size()), "shard").c_str(), out_dir.string().c_str(),
              seconds, static_cast<double>(total_bytes) / 1e6 / std::max(seconds, 1e-9));
  return 0;
}

int run_train_tokenizer(const Args& args) {
  po::variables_map vm = parse("train-tokenizer", train_tokenizer_options(), args);
  if (vm.count("help")) {
    std::cout << train_tokenizer_usage();
    return 0;
  }
  const std::vector<std::string> paths = required_list(vm, "train-tokenizer", "input");
  if (!vm.count("vocab-size")) usage_error("train-tokenizer", "--vocab-size is required");
  const std::string out = required(vm, "train-tokenizer", "out");
  data::BpeTrainerOptions opts;
  opts.vocab_size = vm["vocab-size"].as<int>();
  opts.special_tokens = vm["special-token"].as<std::vector<std::string>>();
  opts.min_frequency = vm["min-frequency"].as<int64_t>();
  const int min_vocab = 256 + static_cast<int>(opts.special_tokens.size());
  if (opts.vocab_size < min_vocab) {
    usage_error("train-tokenizer", "--vocab-size must be at least " + std::to_string(min_vocab) +
                                       " (256 byte tokens and the special tokens), got " +
                                       std::to_string(opts.vocab_size));
  }
  if (opts.min_frequency < 0) usage_error("train-tokenizer", "--min-frequency must not be negative");

  std::vector<data::DocumentSource> sources;
  int64_t total_bytes = 0;
  for (const std::string& path : paths) {
    sources.emplace_back(path);
    total_bytes += sources.back().total_bytes();
  }
  Progress progress("data train-tokenizer", total_bytes, "B");
  size_t current = 0;
  int64_t bytes_done = 0, documents = 0;
  data::Document doc;
  auto next = [&](std::string& text) {
    while (current < sources.size()) {
      if (sources[current].next(doc)) {
        text = std::move(doc.text);
        ++documents;
        progress.update(bytes_done + sources[current].bytes_read(), count(documents, "document"));
        return true;
      }
      bytes_done += sources[current++].total_bytes();
    }
    progress.finish(count(documents, "document"));
    return false;
  };
  const auto start = std::chrono::steady_clock::now();
  const data::Tokenizer tokenizer = data::train_bpe(next, opts);
  MOEGRAD_CHECK(documents > 0, "data train-tokenizer: the inputs hold no document");
  tokenizer.save(out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("trained a vocabulary of %d tokens (%zu merges) on %lld documents in %.1f s; wrote %s\n",
              tokenizer.vocab_size(), tokenizer.config().merges.size(), static_cast<long long>(documents),
              seconds, out.c_str());
  return 0;
}

int run_shard_info(const Args& args) {
  // Shards are positional, unlike the options of the other subcommands.
  po::options_description all;
  all.add(shard_info_options()).add_options()("shard", po::value<std::vector<std::string>>());
  po::positional_options_description positional;
  positional.add("shard", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    usage_error("info", e.what());
  }
  if (vm.count("help")) {
    std::cout << shard_info_usage();
    return 0;
  }
  if (!vm.count("shard")) usage_error("info", "missing shard file");
  for (const std::string& path : vm["shard"].as<std::vector<std::string>>()) {
    const data::TokenShard shard = data::TokenShard::open(path);
    const data::ShardHeader& h = shard.header();
    std::printf("%s\n  language:   %s\n  version:    %u\n  vocab size: %lld\n  dtype:      %s\n"
                "  tokens:     %lld\n  documents:  %lld\n",
                path.c_str(), h.language.c_str(), h.version, static_cast<long long>(h.vocab_size),
                h.dtype == data::TokenDType::U16 ? "u16" : "u32", static_cast<long long>(h.num_tokens),
                static_cast<long long>(h.num_documents));
    if (h.num_documents > 0) {
      std::printf("  tokens/doc: %.1f\n  first doc:  %s\n", static_cast<double>(h.num_tokens) / static_cast<double>(h.num_documents),
                  shard.document_name(0).c_str());
    }
  }
  return 0;
}

const std::vector<Subcommand> kSubcommands = {
    {"build", "tokenize documents into one token shard per language", run_build},
    {"train-tokenizer", "train a byte-level BPE tokenizer.json on documents", run_train_tokenizer},
    {"info", "check token shards and print their headers", run_shard_info},
};

}  // namespace

std::string data_usage() {
  std::ostringstream os;
  os << "Usage: moegrad data <subcommand> [options]\n\nSubcommands:\n";
  os << subcommand_table(kSubcommands);
  os << "\n" << build_usage() << "\n" << train_tokenizer_usage() << "\n" << shard_info_usage();
  return os.str();
}

int run_data(const Args& args) {
  return run_subcommand("data", kSubcommands, args, data_usage());
}

}  // namespace moegrad::app
