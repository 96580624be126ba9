// moegrad run: a whole experiment from one config (train/pipeline_config.h), stage by stage,
// each stage being what a moegrad command does (data, train, adapt, analyze, benchmark,
// profile), run in this process; then report.md (app/pipeline_report.h).
//
// A finished stage leaves pipeline.dir/stages/<stage>.json with a signature of what it was run
// with (its arguments or config, and the signatures of the stages it used); a rerun skips it
// when the signature matches and refuses to mix results when it does not. An interrupted
// training stage resumes from its last checkpoint.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/cli.h"
#include "app/pipeline_report.h"
#include "core/error.h"
#include "core/io/atomic_file.h"
#include "core/io/checksum.h"
#include "core/io/directory_lock.h"
#include "eval/steering.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/pipeline_config.h"

namespace moegrad::app {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using train::PipelineConfig;

po::options_description run_options() {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help and exit")(
      "plan", "print the stages, what each runs and whether it is done, and exit");
  return options;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

// One step of the experiment: its name, a line on what it does, the command it runs (for the
// plan and the signature) and the stages whose results it uses.
struct Stage {
  std::string name;
  std::string what;
  Args command;                   // a moegrad command line, run in this process
  std::string config_text;        // a training stage's config, written before it runs
  std::vector<std::string> uses;  // stages whose outputs it reads
  std::function<bool()> done_by_itself;  // resumable training: whether a checkpoint exists
};

class Pipeline {
 public:
  explicit Pipeline(PipelineConfig c) : c_(std::move(c)), dir_(c_.dir) { plan(); }

  void print_plan() const {
    std::printf("moegrad run %s: %zu stages into %s\n", c_.source.c_str(), stages_.size(),
                dir_.string().c_str());
    for (const Stage& s : stages_) {
      const std::string state = status(s);
      std::printf("  %-22s %-9s %s\n    moegrad %s\n", s.name.c_str(), state.c_str(),
                  s.what.c_str(), join(s.command, " ").c_str());
    }
  }

  void run() {
    fs::create_directories(dir_ / "stages");
    const DirectoryLock lock(dir_.string(), "pipeline directory");
    // What an earlier, killed run was writing when it stopped.
    if (const int64_t removed = remove_abandoned_temporaries(dir_.string()))
      std::printf("removed %lld unfinished file(s) of an interrupted run\n", (long long)removed);
    const auto start = std::chrono::steady_clock::now();
    size_t index = 0;
    for (const Stage& s : stages_) {
      ++index;
      std::printf("\n== [%zu/%zu] %s: %s\n", index, stages_.size(), s.name.c_str(),
                  s.what.c_str());
      std::fflush(stdout);
      const std::string state = status(s);
      if (state == "done") {
        std::printf("done before (%s)\n", (dir_ / "stages" / (s.name + ".json")).string().c_str());
        continue;
      }
      if (state == "changed")
        throw Error(c_.source + ": stage " + s.name + " was run before with other settings (or " +
                    "after other results of the stages it uses); delete its results (" +
                    outputs_of(s) + ") and " + (dir_ / "stages" / (s.name + ".json")).string() +
                    " to run it again, or choose another pipeline.dir");
      run_stage(s);
    }
    write_report();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("\nreport: %s (this run: %.0f s)\n", (dir_ / "report.md").string().c_str(),
                seconds);
  }

 private:
  std::string path(const std::string& rel) const { return (dir_ / rel).string(); }
  std::string shards() const { return c_.shards.empty() ? path("shards") : c_.shards; }
  std::string model_of(const std::string& name) const {
    if (name == "base") return c_.base.empty() ? path("pretrain/model") : c_.base;
    return path(name + "/model");
  }
  // The model the adaptation and the analysis it reads start from.
  std::string adapted_from() const { return c_.runs("cpt") ? "cpt" : "base"; }
  std::vector<std::string> models() const {
    std::vector<std::string> out = {"base"};
    if (c_.runs("cpt")) out.push_back("cpt");
    if (c_.runs("adapt"))
      for (const std::string& m : c_.methods) out.push_back("adapt-" + m);
    return out;
  }
  std::string languages() const { return join(c_.languages, ","); }
  std::string training_stage_of(const std::string& model) const {
    return model == "base" ? (c_.base.empty() ? "pretrain" : "") : model;
  }

  void add(Stage s) { stages_.push_back(std::move(s)); }

  void plan() {
    std::string tokenizer = c_.tokenizer;
    data_stages_.clear();
    if (tokenizer.empty() && !c_.base.empty() &&
        fs::is_regular_file(fs::path(c_.base) / "tokenizer.json"))
      tokenizer = (fs::path(c_.base) / "tokenizer.json").string();
    if (tokenizer.empty()) {
      tokenizer = path("tokenizer.json");
      add({"tokenizer",
           "byte-level BPE of " + std::to_string(c_.vocab_size) + " tokens on the " +
               c_.english + " training documents",
           {"data", "train-tokenizer", "--input", (fs::path(c_.corpus) / c_.english / "train").string(),
            "--vocab-size", std::to_string(c_.vocab_size), "--out", tokenizer},
           "", {}, nullptr});
      data_stages_.push_back("tokenizer");
    }
    tokenizer_ = tokenizer;
    if (c_.shards.empty()) {
      for (const char* split : {"train", "heldout"}) {
        Args cmd = {"data", "build", "--tokenizer", tokenizer};
        for (const std::string& lang : c_.languages)
          cmd.insert(cmd.end(), {"--input", lang + "=" + (fs::path(c_.corpus) / lang / split).string()});
        cmd.insert(cmd.end(), {"--out", path(std::string("shards/") + split)});
        add({std::string("shards-") + split, std::string("token shards of the ") + split + " documents",
             cmd, "", data_stages_, nullptr});
      }
      data_stages_ = {"shards-train", "shards-heldout"};
    }

    if (c_.runs("pretrain")) add_training("pretrain");
    if (c_.runs("cpt")) add_training("cpt");
    add_analyses();
    if (c_.runs("adapt"))
      for (const std::string& m : c_.methods) add_training("adapt-" + m);
    add_evaluations();
  }

  void add_training(const std::string& stage) {
    {
      std::vector<std::pair<std::string, std::string>> joined = {
          {"data.train", shards() + "/train"},   {"data.heldout", shards() + "/heldout"},
          {"data.tokenizer", tokenizer_},         {"run.dir", dir_.string()},
          {"run.name", stage},                   {"train.device", c_.device}};
      std::vector<std::string> uses = data_stages_;
      std::string what;
      Args command = {stage == "pretrain" ? "train" : stage.rfind("adapt-", 0) == 0 ? "adapt" : "train",
                      "--config", path("configs/" + stage + ".cfg")};
      if (stage == "pretrain") {
        joined.push_back({"data.languages", c_.english});
        what = "pretrain the " + c_.english + " base model";
      } else if (stage == "cpt") {
        joined.push_back({"model.from", model_of("base")});
        std::vector<std::string> langs;
        for (const std::string& l : c_.languages)
          if (l != c_.target) langs.push_back(l);
        joined.push_back({"data.languages", join(langs, ",")});
        what = "continual pre-training with routing snapshots";
        if (c_.base.empty()) uses.push_back("pretrain");
      } else {
        const std::string method = stage.substr(6);
        const std::string from = adapted_from();
        joined.push_back({"model.from", model_of(from)});
        joined.push_back({"data.languages", c_.target});
        joined.push_back({"adapt.method", method});
        joined.push_back({"adapt.language", c_.target});
        joined.push_back({"adapt.routing", path("analysis/" + from + "/routing.json")});
        if (!c_.parents.empty()) joined.push_back({"adapt.parents", c_.parents});
        what = method + " adaptation of the " + from + " model to " + c_.target;
        uses.push_back("analysis-" + from);
        if (!training_stage_of(from).empty()) uses.push_back(training_stage_of(from));
      }
      const std::string ini = train::stage_ini(c_, stage, joined);
      check_stage_config(stage, ini);
      const std::string checkpoints = (dir_ / stage / "checkpoints").string();
      add({stage, what, command, ini, uses,
           [checkpoints] { return !train::latest_checkpoint(checkpoints).empty(); }});
    }
  }

  void add_analyses() {
    if (c_.runs("analysis")) {
      std::vector<std::string> analysed = {"base"};
      if (c_.runs("cpt")) analysed.push_back("cpt");
      for (const std::string& m : analysed) {
        Args cmd = {"analyze", "--model", model_of(m), "--data", shards() + "/heldout",
                    "--out", path("analysis/" + m), "--languages", languages(),
                    "--seq-len", std::to_string(analysis_seq_len()),
                    "--tokens", std::to_string(c_.analysis_tokens),
                    "--batch-size", std::to_string(c_.analysis_batch_size),
                    "--device", c_.device, "--english", c_.english,
                    "--alpha", number(c_.alpha), "--shared-k", std::to_string(c_.shared_k),
                    "--overlap-min-count", std::to_string(c_.overlap_min_count)};
        if (!c_.parents.empty()) cmd.insert(cmd.end(), {"--parents", c_.parents});
        std::vector<std::string> uses = data_stages_;
        if (!training_stage_of(m).empty()) uses.push_back(training_stage_of(m));
        add({"analysis-" + m, "routing analysis of the " + m + " model on held-out text", cmd, "",
             uses, nullptr});
      }
    }
  }

  void add_evaluations() {
    if (c_.runs("benchmarks")) {
      std::vector<std::string> proxy_uses;
      if (c_.multiblimp == "proxy" || c_.belebele == "proxy") {
        add({"proxies", "PROXY MultiBLiMP and Belebele sets made from held-out documents",
             {"benchmark", "proxies", "--corpus", c_.corpus, "--out", path("benchmarks/proxies"),
              "--languages", languages(), "--items", std::to_string(c_.proxy_items)},
             "", {}, nullptr});
        proxy_uses.push_back("proxies");
      }
      for (const std::string& m : models()) {
        Args cmd = benchmark_command(m, path("benchmarks/" + m));
        std::vector<std::string> uses = proxy_uses;
        if (!training_stage_of(m).empty()) uses.push_back(training_stage_of(m));
        add({"benchmarks-" + m, "benchmarks and perplexity of the " + m + " model", cmd, "", uses,
             nullptr});
      }
    }

    if (c_.runs("steering")) {
      const std::string m = c_.steer_model;
      const std::string analysis = m == "base" ? "base" : adapted_from();
      Args steer = {"benchmark", "steer", "--analysis", path("analysis/" + analysis + "/routing.json"),
                    "--out", path("steering/steering.json"),
                    "--language", c_.steer_language.empty() ? c_.english : c_.steer_language,
                    "--tau", number(c_.tau), "--std", number(c_.num_std), "--mode", c_.steer_mode,
                    "--delta", number(c_.delta), "--lambda", number(c_.lambda)};
      if (!c_.steer_reference.empty()) steer.insert(steer.end(), {"--reference", c_.steer_reference});
      if (!c_.steer_layers.empty()) {
        // Against the model now, not when the steering stage reads the analysis at the end.
        std::istringstream shape(profile_config());
        const int64_t layers =
            train::parse_config(shape, c_.source, {}, false).model.config.num_hidden_layers;
        MOEGRAD_CHECK(eval::parse_layer_range(c_.steer_layers).last < layers, c_.source,
                      ": steering.layers: ", c_.steer_layers, " is past the model's ", layers,
                      " layers (0-", layers - 1, ")");
        steer.insert(steer.end(), {"--layers", c_.steer_layers});
      }
      add({"steering-file", "the experts to promote, from the " + analysis + " analysis", steer, "",
           {"analysis-" + analysis}, nullptr});
      Args cmd = benchmark_command(m, path("steering"));
      cmd.insert(cmd.end(), {"--steer", path("steering/steering.json")});
      std::vector<std::string> uses = {"steering-file"};
      if (c_.multiblimp == "proxy" || c_.belebele == "proxy") uses.push_back("proxies");
      if (!training_stage_of(m).empty()) uses.push_back(training_stage_of(m));
      add({"steering", "benchmarks of the " + m + " model without and with router steering", cmd,
           "", uses, nullptr});
    }

    if (c_.runs("profile")) {
      const std::string ini = profile_config();
      add({"profile", "op-level profile of a training step of the base model's shape",
           {"profile", "--config", path("configs/profile.cfg"), "--steps",
            std::to_string(c_.profile_steps), "--warmup", std::to_string(c_.profile_warmup),
            "--out", path("profile")},
           ini, {}, nullptr});
      check_stage_config("profile", ini, /*profile=*/true);
    }
  }

  static std::string number(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  }

  Args benchmark_command(const std::string& model, const std::string& out) const {
    Args cmd = {"benchmark", "run", "--model", model_of(model), "--tokenizer", tokenizer_,
                "--out", out, "--languages", languages(), "--shots", std::to_string(c_.shots),
                "--prompt", c_.prompt, "--max-tokens", std::to_string(c_.perplexity_tokens),
                "--batch-tokens", std::to_string(c_.batch_tokens), "--device", c_.device};
    const std::string proxies = path("benchmarks/proxies");
    if (c_.multiblimp != "none")
      cmd.insert(cmd.end(), {"--multiblimp", c_.multiblimp == "proxy" ? proxies + "/proxy_multiblimp"
                                                                       : c_.multiblimp});
    if (c_.belebele != "none")
      cmd.insert(cmd.end(), {"--belebele", c_.belebele == "proxy" ? proxies + "/proxy_belebele"
                                                                   : c_.belebele});
    if (c_.perplexity != "none")
      cmd.insert(cmd.end(), {"--perplexity", c_.perplexity == "heldout" ? c_.corpus : c_.perplexity});
    return cmd;
  }

  // The analysis windows: the length the models trained on.
  int64_t analysis_seq_len() const {
    if (c_.analysis_seq_len > 0) return c_.analysis_seq_len;
    for (const char* stage : {"cpt", "pretrain"}) {
      auto it = c_.stage_keys.find(stage);
      if (it == c_.stage_keys.end()) continue;
      for (const auto& [key, value] : it->second)
        if (key == "data.seq_len") return std::stoll(value);
    }
    return train::DataSection().seq_len;
  }

  // The profile's config: the pretraining stage's, or the base model's shape from its
  // config.json with the cpt stage's batch.
  std::string profile_config() const {
    if (c_.runs("pretrain")) return stages_by_name("pretrain").config_text;
    std::ifstream in(fs::path(c_.base) / "config.json");
    const json hf = json::parse(in, nullptr, false);
    MOEGRAD_CHECK(hf.is_object(), c_.base, "/config.json: not JSON");
    std::vector<std::pair<std::string, std::string>> keys;
    for (const char* k : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "num_key_value_heads", "num_experts",
                          "num_experts_per_tok", "max_position_embeddings", "rope_theta",
                          "rms_norm_eps"})
      if (hf.contains(k) && hf[k].is_number()) keys.push_back({std::string("model.") + k, hf[k].dump()});
    keys.push_back({"train.device", c_.device});
    train::PipelineConfig shape = c_;
    auto cpt = c_.stage_keys.find("cpt");
    shape.stage_keys.clear();
    if (cpt != c_.stage_keys.end())
      for (const auto& kv : cpt->second)
        if (kv.first == "data.seq_len" || kv.first == "train.batch_size") keys.push_back(kv);
    return train::stage_ini(shape, "profile", keys);
  }

  const Stage& stages_by_name(const std::string& name) const {
    for (const Stage& s : stages_)
      if (s.name == name) return s;
    throw Error("moegrad run: no stage " + name);
  }

  // A stage's config is checked before anything runs, so a typo fails at once, not after the
  // stages before it.
  void check_stage_config(const std::string& stage, const std::string& ini, bool profile = false) {
    std::istringstream in(ini);
    train::parse_config(in, c_.source + (profile ? " (the profile's config)"
                                                 : " [" + stage.substr(0, stage.find('-')) + "]"),
                        {}, /*check_inputs=*/false);
  }

  // The signature of a stage: its command or config and those of the stages it uses.
  std::string signature(const Stage& s) const {
    std::string sig = join(s.command, " ") + "\n" + s.config_text;
    for (const std::string& u : s.uses) {
      const json j = record(u);
      sig += "\nuses " + u + " " + (j.is_object() ? j.value("signature_hash", "") : "");
    }
    return sig;
  }

  // stages/<stage>.json of a finished stage; null when it has not finished.
  json record(const std::string& stage) const {
    std::ifstream in(dir_ / "stages" / (stage + ".json"));
    return in ? json::parse(in, nullptr, false) : json();
  }

  // "done", "changed" (done with another signature), "partial" (a training stage with
  // checkpoints) or "to do".
  std::string status(const Stage& s) const {
    const json j = record(s.name);
    if (!j.is_null())
      return j.is_object() && j.value("signature", "") == signature(s) ? "done" : "changed";
    if (s.done_by_itself && s.done_by_itself()) return "partial";
    return "to do";
  }

  std::string outputs_of(const Stage& s) const {
    if (!s.config_text.empty() && s.name != "profile") return path(s.name);
    for (size_t i = 0; i + 1 < s.command.size(); ++i)
      if (s.command[i] == "--out") return s.command[i + 1];
    return "its outputs";
  }

  void run_stage(const Stage& s) {
    Args command = s.command;
    if (!s.config_text.empty()) {
      fs::create_directories(dir_ / "configs");
      write_file_atomically(path("configs/" + (s.name == "profile" ? std::string("profile") : s.name) + ".cfg"),
                            s.config_text);
    }
    if (s.done_by_itself) {
      const fs::path run_dir = dir_ / s.name;
      if (s.done_by_itself()) {
        command.push_back("--resume");
      } else if (fs::exists(run_dir)) {
        // Stopped before its first checkpoint: nothing to resume; kept aside, not deleted.
        fs::path aside = run_dir;
        aside += ".interrupted";
        fs::remove_all(aside);
        fs::rename(run_dir, aside);
        std::printf("%s stopped before its first checkpoint; moved to %s\n", run_dir.string().c_str(),
                    aside.string().c_str());
      }
    }
    std::printf("moegrad %s\n", join(command, " ").c_str());
    std::fflush(stdout);
    const auto start = std::chrono::steady_clock::now();
    const Command* cmd = find_command(command[0]);
    MOEGRAD_CHECK(cmd != nullptr, "moegrad run: no command ", command[0]);
    int status = 0;
    try {
      status = cmd->run(Args(command.begin() + 1, command.end()));
    } catch (const std::exception& e) {
      throw Error("stage " + s.name + " (moegrad " + join(command, " ") + "): " + e.what());
    }
    MOEGRAD_CHECK(status == 0, "stage ", s.name, ": moegrad ", command[0], " exited with ", status);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string sig = signature(s);
    const json record = {{"stage", s.name},
                         {"what", s.what},
                         {"command", "moegrad " + join(command, " ")},
                         {"seconds", seconds},
                         {"finished", std::time(nullptr)},
                         {"signature", sig},
                         {"signature_hash", hex64(fnv1a64(sig.data(), sig.size()))}};
    write_file_atomically(path("stages/" + s.name + ".json"), record.dump(1) + "\n");
    std::fflush(stdout);
  }

  void write_report() {
    ReportInputs in;
    in.config = &c_;
    in.dir = dir_.string();
    in.models = models();
    in.adapted_from = adapted_from();
    for (const Stage& s : stages_) in.stages.push_back(s.name);
    const std::string md = pipeline_report(in);
    write_file_atomically(path("report.md"), md);
  }

  PipelineConfig c_;
  fs::path dir_;
  std::string tokenizer_;
  std::vector<std::string> data_stages_;
  std::vector<Stage> stages_;
};

}  // namespace

std::string pipeline_usage() {
  std::ostringstream os;
  os << "Usage: moegrad run CONFIG [--plan] [--section.key=value ...]\n\n"
        "Runs a whole experiment from one config (e.g. experiments/demo/pipeline.cfg): token\n"
        "shards (and a tokenizer) from a corpus, the English base model (pretrained, or an HF\n"
        "directory), continual pre-training with routing snapshots, routing analyses of the\n"
        "base and CPT models, selective adaptation variants (SEFT, SSFT, AEFT, final layers...)\n"
        "to the target language, MultiBLiMP / Belebele (or their proxies) and perplexity of\n"
        "every model, a router steering run and a profile of a training step, then report.md\n"
        "with the tables and figures. Everything goes to pipeline.dir: stages/ (one record per\n"
        "finished stage), configs/ (each training stage's config), one folder per stage, and\n"
        "report.md. A rerun skips finished stages, resumes an interrupted training stage and\n"
        "refuses to reuse a stage whose settings changed.\n\n"
        "The training stages' sections [pretrain], [cpt] and [adapt] take every key of\n"
        "'moegrad train --help' as section.key (e.g. train.steps = 300 under [cpt]), except\n"
        "model.from, data.train, data.heldout, data.tokenizer, run.dir, run.name and adapt's\n"
        "method, language, routing and parents, which the pipeline sets. Overrides: --cpt.train.steps=10.\n\n"
     << run_options() << "\n"
     << train::pipeline_options();
  return os.str();
}

int run_pipeline(const Args& args) {
  Args own, overrides;
  split_config_overrides(args, own, overrides);
  std::vector<std::string> positional;
  Args flags;
  for (const std::string& a : own) (a.rfind("-", 0) == 0 ? flags : positional).push_back(a);
  po::variables_map vm = parse_options("run", run_options(), flags);
  if (vm.count("help")) {
    std::cout << pipeline_usage();
    return 0;
  }
  if (positional.size() != 1)
    throw UsageError("run", positional.empty() ? "missing CONFIG" : "more than one CONFIG");
  Pipeline pipeline(train::load_pipeline(positional[0], overrides));
  if (vm.count("plan")) {
    pipeline.print_plan();
    return 0;
  }
  pipeline.run();
  return 0;
}

}  // namespace moegrad::app
