#include "train/trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/io/atomic_file.h"
#include "core/io/json_reader.h"
#include "core/profiler.h"
#include "core/random.h"
#include "core/storage.h"
#include "data/tokenizer.h"
#include "eval/routing_analysis.h"
#include "eval/routing_collect.h"
#include "eval/routing_figures.h"
#include "moe/checkpoint.h"
#include "moe/hooks.h"
#include "train/checkpoint.h"
#include "train/profile.h"
#include "train/schedule.h"
#include "train/setup.h"

namespace moegrad::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// "section.key" -> value of an INI text written by to_ini.
std::map<std::string, std::string> ini_entries(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      section = line.substr(1, line.find(']') - 1);
      continue;
    }
    const size_t eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    std::string& v = out[section + "." + line.substr(0, eq)];
    v += (v.empty() ? "" : "; ") + line.substr(eq + 3);
  }
  return out;
}

// Keys a resumed run may change: its length, learning-rate schedule and clipping (to recover
// from a divergence), its device and memory limit, and how it evaluates, logs and checkpoints. The rest (model, data,
// batch shape, mask, losses) would make the run another experiment.
bool may_change_on_resume(const std::string& key) {
  static const char* const kKeys[] = {"train.steps",         "train.lr",         "train.device",
                                      "train.memory_limit",
                                      "train.schedule",      "train.warmup_steps",
                                      "train.warmup_start",  "train.alpha_f",
                                      "train.decay_fraction", "train.clip",
                                      "data.heldout"};
  for (const char* k : kKeys)
    if (key == k) return true;
  return key.rfind("run.", 0) == 0 || key.rfind("eval.", 0) == 0 ||
         key.rfind("profile.", 0) == 0;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}


}  // namespace

Trainer::Trainer(TrainConfig config, bool resume, TrainerCallbacks callbacks)
    : config_(std::move(config)),
      device_(Device::select(config_.train.device)),
      callbacks_(std::move(callbacks)),
      run_dir_(config_.run_dir()) {
  // Locked before it is checked, so that of two runs started together one is refused.
  if (!resume) fs::create_directories(run_dir_);
  if (fs::is_directory(run_dir_)) lock_.emplace(run_dir_, "run directory");
  check_run_dir(resume);
  set_memory_limit(device_, config_.train.memory_limit_bytes());
  reset_peak_memory(device_);
  fs::create_directories(fs::path(run_dir_) / "checkpoints");
  log_.open(fs::path(run_dir_) / "train.log", resume ? std::ios::app : std::ios::trunc);
  MOEGRAD_CHECK(log_, "cannot write ", (fs::path(run_dir_) / "train.log").string());

  if (resume) {
    resume_from_checkpoint();
  } else {
    if (!config_.model.from.empty()) {
      model_ = load_olmoe(config_.model.from);
      say("model: " + config_.model.from);
    } else {
      model_ = new_model(config_);
      say("model: new, seed " + std::to_string(config_.model.seed));
    }
    setup_training();
    setup_data();
  }
  const NamedParameters params = model_->named_parameters();
  say(mask_.summary(params));
  const TrainableCount count = trainable();
  json trainable_json = {{"trainable", count.trainable},
                         {"total", count.total},
                         {"percent", count.percent()},
                         {"optimizer_state_bytes", optimizer_->state_bytes()},
                         {"mask", mask_.to_json()}};
  if (config_.adapt.method != "none") {
    const Adaptation a = adaptation(config_, model_->config());
    json experts = json::object();
    for (const auto& [layer, list] : a.experts) experts[std::to_string(layer)] = list;
    trainable_json["adaptation"] = {{"method", config_.adapt.method},
                                    {"language", config_.adapt.language},
                                    {"experts_of", a.source_language},
                                    {"experts", experts}};
    char percent[32];
    std::snprintf(percent, sizeof percent, "%.3f%%", count.percent());
    say("adaptation " + config_.adapt.method + " for " + config_.adapt.language +
        (a.source_language.empty() ? "" : " (experts of " + a.source_language + ")") + ": " +
        std::to_string(count.trainable) + " of " + std::to_string(count.total) +
        " parameters train (" + percent + ")");
  }
  write_file_atomically((fs::path(run_dir_) / "trainable.json").string(),
                        trainable_json.dump(2) + "\n");
  write_file_atomically((fs::path(run_dir_) / "config.ini").string(), to_ini(config_));
}

Trainer::~Trainer() = default;

TrainableCount Trainer::trainable() const { return mask_.count(model_->named_parameters()); }

void Trainer::say(const std::string& line) {
  log_ << line << "\n";
  log_.flush();
  if (callbacks_.on_message) callbacks_.on_message(line);
}

void Trainer::write_profile(int64_t last_step) {
  ProfileRun run;
  run.device = device_;
  run.events = profiler::stop();
  for (const profiler::Event& e : run.events) run.steps += e.kind == profiler::Kind::Step;
  run.tokens_per_step = config_.tokens_per_step();
  run.memory = memory_report(device_);
  const json summary = profile_summary(run);
  const fs::path dir = fs::path(run_dir_) / "profile";
  fs::create_directories(dir);
  write_file_atomically((dir / "profile.json").string(), summary.dump(1) + "\n");
  write_file_atomically((dir / "profile.txt").string(), profile_table(summary));
  write_file_atomically((dir / "trace.json").string(), chrome_trace(run.events).dump() + "\n");
  log_metrics({{"type", "profile"}, {"steps", run.steps}, {"last_step", last_step},
               {"step_ms", summary["step_ms"]}, {"ops_ms_per_step", summary["ops_ms_per_step"]}});
  say("profiled " + std::to_string(run.steps) + " steps up to step " +
      std::to_string(last_step) + ": " + (dir / "profile.txt").string());
}

void Trainer::check_run_dir(bool resume) {
  const fs::path dir(run_dir_);
  if (resume) {
    MOEGRAD_CHECK(fs::is_directory(dir), "--resume: run directory ", run_dir_,
                  " does not exist (nothing to resume)");
    const fs::path saved = dir / "config.ini";
    MOEGRAD_CHECK(fs::is_regular_file(saved), "--resume: ", run_dir_,
                  " holds no config.ini: not a moegrad run directory");
    const auto before = ini_entries(read_file(saved)), now = ini_entries(to_ini(config_));
    std::string refused, allowed;
    for (const auto& [key, value] : now) {
      auto it = before.find(key);
      const std::string old = it == before.end() ? "(unset)" : it->second;
      if (old == value) continue;
      (may_change_on_resume(key) ? allowed : refused) += "\n  " + key + ": " + old + " -> " + value;
    }
    MOEGRAD_CHECK(refused.empty(), "--resume: the config differs from the one ", run_dir_,
                  " was started with; only train.steps, the learning-rate schedule, train.clip, "
                  "data.heldout, eval.*, profile.* and run.* may change:",
                  refused);
    resume_changes_ = allowed;
    return;
  }
  const bool used = fs::exists(dir / "checkpoints") || fs::exists(dir / "metrics.jsonl");
  MOEGRAD_CHECK(!used, "run directory ", run_dir_,
                " already holds a run: continue it with --resume, or choose another run.name "
                "(or delete it)");
}

void Trainer::resume_from_checkpoint() {
  // A kill mid-write leaves temporaries beside the files they were to replace.
  if (const int64_t removed = remove_abandoned_temporaries(run_dir_))
    say("removed " + std::to_string(removed) + " unfinished file(s) of the interrupted run");
  const std::string latest = latest_checkpoint((fs::path(run_dir_) / "checkpoints").string());
  MOEGRAD_CHECK(!latest.empty(), "--resume: ", run_dir_, "/checkpoints holds no checkpoint");
  Checkpoint ck = load_checkpoint(latest);
  model_ = std::move(ck.model);
  const JsonReader state(ck.state, ck.state_file);
  const FreezeMask saved_mask = FreezeMask::from_json(state["freeze_mask"]);
  const int64_t optimizer_step = state["optimizer_step"].integer(0);
  setup_training();
  const std::string diff = mask_.difference(saved_mask);
  MOEGRAD_CHECK(diff.empty(), "--resume: the freeze mask of the config differs from the one in ",
                latest, ": ", diff);
  optimizer_->load_state(ck.optimizer_state);
  optimizer_->set_step_count(optimizer_step);
  step_ = ck.step;
  checkpointed_step_ = ck.step;
  // The kill may have come between a checkpoint and the deletion of the oldest one.
  prune_checkpoints((fs::path(run_dir_) / "checkpoints").string(), config_.run.keep);
  setup_data();
  loader_->restore(state["loader"]);

  // Metrics past the checkpoint belong to steps that will run again.
  const fs::path metrics = fs::path(run_dir_) / "metrics.jsonl";
  if (fs::exists(metrics)) {
    std::istringstream in(read_file(metrics));
    std::string line, kept;
    while (std::getline(in, line)) {
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || j.value("step", int64_t(0)) > step_) continue;
      kept += line + "\n";
      if (j.value("type", "") == "eval") evaluated_step_ = j.value("step", int64_t(0));
    }
    write_file_atomically(metrics.string(), kept);
  }
  say("resumed from " + latest + " at step " + std::to_string(step_) +
      (resume_changes_.empty() ? "" : "; config changes:" + resume_changes_));
  if (device_.is_cpu() && state.has("cpu_threads")) {
    const int64_t before = state["cpu_threads"].integer(1);
    if (before != omp_get_max_threads())
      say("note: the run used " + std::to_string(before) + " CPU threads and continues on " +
          std::to_string(omp_get_max_threads()) +
          ", so it will not match an uninterrupted run bit for bit (how the CPU's GEMMs divide "
          "their sums depends on it); OMP_NUM_THREADS=" + std::to_string(before) +
          " continues it exactly");
  }
}

void Trainer::setup_training() {
  place_model(config_, *model_, device_);
  const NamedParameters params = model_->named_parameters();
  mask_ = apply_freeze_mask(config_, *model_);
  optimizer_ = std::make_unique<AdamW>(params, mask_, config_.adamw(), config_.param_groups());
}

void Trainer::setup_data() {
  const DataSection& d = config_.data;
  std::vector<std::string> languages = config_.language_list();
  if (languages.empty()) languages = data::shard_languages(d.train);
  MOEGRAD_CHECK(!languages.empty(), config_.source, ": data.train: ", d.train,
                " holds no <lang>.shard files (build them with 'moegrad data build')");
  std::vector<data::TokenShard> shards;
  for (const std::string& lang : languages) {
    const fs::path p = fs::path(d.train) / (lang + ".shard");
    MOEGRAD_CHECK(fs::is_regular_file(p), config_.source, ": data.languages: no shard for '",
                  lang, "' (", p.string(), " does not exist)");
    shards.push_back(data::TokenShard::open(p.string()));
    MOEGRAD_CHECK(shards.back().vocab_size() <= model_->config().vocab_size, p.string(),
                  ": vocabulary of ", shards.back().vocab_size(),
                  " tokens does not fit the model's vocab_size ", model_->config().vocab_size);
  }
  if (!d.tokenizer.empty()) {
    const data::Tokenizer tok = data::Tokenizer::from_file(d.tokenizer);
    token_bytes_.assign(size_t(tok.vocab_size()), 0);
    for (int32_t id = 0; id < tok.vocab_size(); ++id)
      if (tok.has_id(id)) token_bytes_[size_t(id)] = int64_t(tok.token_bytes(id).size());
  }
  const std::optional<int64_t> separator = document_separator(d);
  MOEGRAD_CHECK(separator.has_value() || d.tokenizer.empty(), d.tokenizer,
                ": has no <|endoftext|> token to separate documents; set data.eos_id");
  const int64_t eos = separator.value_or(-1);
  loader_options_.seq_len = d.seq_len;
  loader_options_.batch_size = config_.train.batch_size;
  loader_options_.seed = config_.train.seed;
  loader_options_.eos_id = int32_t(eos);
  loader_options_.weights = config_.language_weights();
  loader_ = std::make_unique<data::PackedLoader>(std::move(shards), loader_options_);

  heldout_shards_.clear();
  if (!d.heldout.empty())
    for (const std::string& lang : data::shard_languages(d.heldout))
      heldout_shards_[lang] = (fs::path(d.heldout) / (lang + ".shard")).string();
}

void Trainer::set_training_hooks(bool training) {
  if (!config_.restricts_router() || !training) {
    model_->set_router_hooks({});
    return;
  }
  std::map<int64_t, RouterIntervention> per_layer;
  for (const auto& [layer, experts] : trained_experts_by_layer(mask_))
    per_layer[layer] = restrict_experts(experts, {layer});
  RouterHooks hooks;
  hooks.intervene = [per_layer](int64_t layer, const Variable& logits) {
    auto it = per_layer.find(layer);
    return it == per_layer.end() ? logits : it->second(layer, logits);
  };
  model_->set_router_hooks(std::move(hooks));
}

void Trainer::log_metrics(const json& line) {
  std::ofstream out(fs::path(run_dir_) / "metrics.jsonl", std::ios::app);
  out << line.dump() << "\n";
  MOEGRAD_CHECK(out, "cannot append to ", run_dir_, "/metrics.jsonl");
}

std::map<std::string, LanguageEval> Trainer::evaluate() {
  std::map<std::string, LanguageEval> out;
  set_training_hooks(false);
  NoGradGuard no_grad;
  for (const auto& [lang, path] : heldout_shards_) {
    data::TokenShard shard = data::TokenShard::open(path);
    data::LoaderOptions o = loader_options_;
    o.seed = 0;
    o.weights.clear();
    const int64_t per_batch = o.batch_size * o.seq_len;
    const int64_t batches =
        std::min(config_.eval.batches, std::max<int64_t>(1, shard.num_tokens() / per_batch));
    data::PackedLoader loader({std::move(shard)}, o);
    double sum = 0;
    int64_t rows = 0, bytes = 0;
    for (int64_t i = 0; i < batches; ++i) {
      data::Batch b = loader.next();
      const Tensor on_device = b.input_ids.to(device_);
      for (double l : sequence_losses(model_->forward(on_device).hidden.data(), on_device)) {
        sum += l;
        ++rows;
      }
      const std::vector<int64_t> ids = b.input_ids.to_vector<int64_t>();
      for (size_t j = 0; j < ids.size(); ++j)  // the targets: every token but each row's first
        if (j % size_t(o.seq_len) != 0 && size_t(ids[j]) < token_bytes_.size())
          bytes += token_bytes_[size_t(ids[j])];
    }
    LanguageEval e{sum / double(rows), rows * (o.seq_len - 1), 0.0};
    if (bytes > 0) e.bits_per_byte = e.loss * double(e.tokens) / std::log(2.0) / double(bytes);
    out[lang] = e;
  }
  set_training_hooks(true);
  return out;
}

void Trainer::snapshot_routing() {
  if (heldout_shards_.empty() || config_.eval.routing_tokens == 0) return;
  std::vector<data::TokenShard> shards;
  for (const auto& [lang, path] : heldout_shards_) shards.push_back(data::TokenShard::open(path));
  const OlmoeConfig& c = model_->config();
  eval::RoutingStats stats(c.num_hidden_layers, c.num_experts, c.num_experts_per_tok);
  eval::RoutingCollectOptions o;
  o.seq_len = config_.data.seq_len;
  o.max_tokens = config_.eval.routing_tokens;
  o.batch_size = config_.train.batch_size;
  eval::collect_routing(*model_, shards, o, stats);  // evaluation routing: no restriction
  set_training_hooks(true);
  const json analysis = eval::analyze_routing(stats, eval::RoutingAnalysisOptions{});
  const fs::path dir = fs::path(run_dir_) / "routing" / ("step-" + std::to_string(step_));
  fs::create_directories(dir);
  write_file_atomically((dir / "routing_stats.json").string(), stats.to_json().dump() + "\n");
  write_file_atomically((dir / "routing.json").string(), analysis.dump(1) + "\n");
  json layers = json::array();
  for (const json& l : analysis["per_layer"])
    layers.push_back({{"jsd_mean", l["jsd_mean"]},
                      {"jsd_mean_without_english", l["jsd_mean_without_english"]},
                      {"jsd_from_english", l["jsd_from_english"]},
                      {"specialization", l["specialization"]},
                      {"entropy", l["entropy"]}});
  fs::create_directories(dir / "figures");
  for (const auto& [name, svg] : eval::routing_figures(analysis))
    write_file_atomically((dir / "figures" / name).string(), svg);
  write_routing_dynamics();
  log_metrics({{"type", "routing"}, {"step", step_}, {"dir", dir.string()}, {"layers", layers}});
  say("routing at step " + std::to_string(step_) + ": " + dir.string());
}

void Trainer::write_routing_dynamics() {
  const fs::path routing = fs::path(run_dir_) / "routing";
  std::vector<std::pair<int64_t, json>> snapshots;
  for (const auto& entry : fs::directory_iterator(routing)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step-", 0) != 0 || !fs::is_regular_file(entry.path() / "routing.json")) continue;
    std::ifstream in(entry.path() / "routing.json");
    snapshots.push_back({std::stoll(name.substr(5)), json::parse(in)});
  }
  std::sort(snapshots.begin(), snapshots.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  fs::create_directories(routing / "figures");
  for (const char* metric : {"jsd_mean", "jsd_mean_without_english", "jsd_from_english",
                             "specialization", "entropy"})
    write_file_atomically((routing / "figures" / (std::string(metric) + "_over_steps.svg")).string(),
                          eval::metric_over_checkpoints(snapshots, metric));
}

void Trainer::write_checkpoint() {
  json state = {{"loader", json::parse(loader_->state_json())},
                {"freeze_mask", mask_.to_json()},
                {"optimizer_step", optimizer_->step_count()},
                // Nothing random is drawn while training (no dropout): the seeds are the state.
                {"rng", {{"model_seed", config_.model.seed}, {"data_seed", config_.train.seed}}},
                // A CPU run's numbers depend on it (OpenBLAS): a resume says when it changed.
                {"cpu_threads", omp_get_max_threads()}};
  const std::string checkpoints = (fs::path(run_dir_) / "checkpoints").string();
  const std::string dir =
      save_checkpoint(checkpoints, step_, *model_, optimizer_->state_tensors(), state);
  checkpointed_step_ = step_;
  prune_checkpoints(checkpoints, config_.run.keep);
  say("checkpoint: " + dir);
}

void Trainer::run() {
  const TrainSection& t = config_.train;
  const ScheduleConfig schedule = config_.schedule();

  StepOptions options = step_options(config_);

  auto report_eval = [&] {
    if (heldout_shards_.empty()) return;
    json langs = json::object();
    std::ostringstream line;
    line << "eval at step " << step_ << ":";
    for (const auto& [lang, e] : evaluate()) {
      langs[lang] = {{"loss", e.loss}, {"ppl", std::exp(e.loss)}, {"tokens", e.tokens}};
      if (e.bits_per_byte > 0) langs[lang]["bpb"] = e.bits_per_byte;
      line << " " << lang << " " << e.loss;
    }
    log_metrics({{"type", "eval"}, {"step", step_}, {"languages", langs}});
    evaluated_step_ = step_;
    say(line.str());
    snapshot_routing();
  };

  const auto start = std::chrono::steady_clock::now();
  int64_t tokens = 0;
  if (step_ == 0) snapshot_routing();  // the starting point of the routing dynamics
  set_training_hooks(true);
  const ProfileSection& prof = config_.profile;
  while (step_ < t.steps) {
    const bool profiled = prof.start > 0 && step_ + 1 >= prof.start &&
                          step_ + 1 < prof.start + prof.steps;
    if (profiled && step_ + 1 == prof.start) {
      model_->name_for_profiler("");
      profiler::start();
    }
    std::optional<profiler::Scope> step_scope;
    if (profiled) step_scope.emplace(profiler::Kind::Step, "step", Device::cpu());
    std::vector<data::Batch> micro;
    {
      const profiler::PhaseScope data_phase(profiler::Phase::Data);
      for (int64_t i = 0; i < t.grad_accum; ++i) {
        micro.push_back(loader_->next());
        micro.back().input_ids = micro.back().input_ids.to(device_);
      }
    }
    options.lr = learning_rate(schedule, step_ + 1);
    const auto t0 = std::chrono::steady_clock::now();
    StepReport r;
    try {
      r.stats = train_step(*model_, *optimizer_, micro, options);
      if (profiled) {
        synchronize(device_);
        step_scope.reset();
        if (step_ + 1 == prof.start + prof.steps - 1 || step_ + 1 == t.steps)
          write_profile(step_ + 1);
      }
    } catch (const NonFiniteLoss& e) {
      const std::string last = latest_checkpoint((fs::path(run_dir_) / "checkpoints").string());
      // Before the first update the learning rate has had no effect: the model it starts from
      // gives the non-finite value.
      const std::string advice =
          step_ > 0 ? "lower train.lr or raise train.warmup_steps, then --resume"
          : config_.model.from.empty()
              ? "no update was applied yet, so the new model itself gives it: check "
                "model.initializer_range"
              : "no update was applied yet, so the model of model.from (" + config_.model.from +
                    ") gives it: check its weights";
      const std::string msg = "step " + std::to_string(step_ + 1) + ": " + e.what() +
                              ". Stopped; the last good checkpoint is " +
                              (last.empty() ? std::string("(none yet)") : last) + " (" + advice +
                              ")";
      say(msg);
      throw Error(msg);
    }
    ++step_;
    r.step = step_;
    r.total_steps = t.steps;
    r.lr = options.lr;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    tokens += r.stats.tokens;
    json langs = json::object();
    for (const auto& [lang, l] : r.stats.languages) langs[lang] = l.mean();
    log_metrics({{"type", "step"},
                 {"step", step_},
                 {"loss", r.stats.loss},
                 {"ce", r.stats.ce},
                 {"lb", r.stats.lb},
                 {"z", r.stats.z},
                 {"lr", r.lr},
                 {"grad_norm", r.stats.grad_norm},
                 {"tokens", r.stats.tokens},
                 {"seconds", r.seconds},
                 {"tokens_per_s", double(r.stats.tokens) / r.seconds},
                 {"languages", langs}});
    if (callbacks_.on_step) callbacks_.on_step(r);
    if (step_ < t.steps) {
      if (config_.eval.interval > 0 && step_ % config_.eval.interval == 0) report_eval();
      if (config_.run.checkpoint_interval > 0 && step_ % config_.run.checkpoint_interval == 0)
        write_checkpoint();
    }
  }
  if (evaluated_step_ != step_) report_eval();
  if (checkpointed_step_ != step_) write_checkpoint();
  // The tokenizer goes with the model (a continued model's own when the config names none).
  std::string tokenizer = config_.data.tokenizer;
  if (tokenizer.empty() && !config_.model.from.empty() &&
      fs::is_regular_file(fs::path(config_.model.from) / "tokenizer.json"))
    tokenizer = (fs::path(config_.model.from) / "tokenizer.json").string();
  save_model_atomically(*model_, (fs::path(run_dir_) / "model").string(), tokenizer);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const MemoryStats mem = memory_stats(Device::cpu());
  const MemoryReport device_mem = memory_report(device_);
  // The categories when the total peaked, and each category's own high-water mark.
  json peak = {{"total", device_mem.peak_total}}, own_peaks = json::object();
  for (size_t c = 0; c < kMemoryCategories; ++c) {
    peak[memory_category_name(MemoryCategory(c))] = device_mem.at_peak[c];
    own_peaks[memory_category_name(MemoryCategory(c))] = device_mem.peak[c];
  }
  json summary = {{"steps", step_},
                  {"device", device_.str()},
                  {"peak_device_memory", peak},
                  {"peak_device_memory_by_category", own_peaks},
                  {"seconds", seconds},
                  {"tokens", tokens},
                  {"tokens_per_s", seconds > 0 ? double(tokens) / seconds : 0.0},
                  {"peak_host_memory_bytes", mem.peak_bytes},
                  {"trainable", trainable().trainable},
                  {"total", trainable().total}};
  write_file_atomically((fs::path(run_dir_) / "summary.json").string(), summary.dump(2) + "\n");
  say("model: " + (fs::path(run_dir_) / "model").string() + "; peak memory on " +
      device_.str() + ": " + memory_breakdown(device_mem.at_peak));
}

}  // namespace moegrad::train
