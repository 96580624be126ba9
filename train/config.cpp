#include "train/config.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <set>
#include <sstream>

#include "core/device.h"
#include "core/error.h"
#include "core/split_list.h"
#include "eval/routing_analysis.h"

namespace moegrad::train {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

// The freeze rules keep their order across keys, which a variables_map cannot: they are read
// from the parsed options directly.
const char* const kFreezeRuleKeys[] = {"freeze.train", "freeze.freeze", "freeze.experts",
                                       "freeze.rows"};

bool is_freeze_rule(const std::string& key) {
  for (const char* k : kFreezeRuleKeys)
    if (key == k) return true;
  return false;
}

// Calls f(key, field, help) for every scalar key, so one table gives both the options and
// their INI form.
template <typename C, typename F>
void visit(C& c, F&& f) {
  OlmoeConfig& m = c.model.config;
  f("model.from", c.model.from,
    "HF model directory (config.json + safetensors) to continue from; empty: a new model of the "
    "shape below, randomly initialised");
  f("model.seed", c.model.seed, "seed of a new model's initialisation");
  f("model.vocab_size", m.vocab_size, "new model: vocabulary size (>= the tokenizer's)");
  f("model.hidden_size", m.hidden_size, "new model: hidden size");
  f("model.intermediate_size", m.intermediate_size, "new model: width of each expert");
  f("model.num_hidden_layers", m.num_hidden_layers, "new model: decoder layers");
  f("model.num_attention_heads", m.num_attention_heads, "new model: attention heads");
  f("model.num_key_value_heads", m.num_key_value_heads,
    "new model: key/value heads (grouped-query attention when fewer than the heads)");
  f("model.num_experts", m.num_experts, "new model: experts per MoE layer");
  f("model.num_experts_per_tok", m.num_experts_per_tok, "new model: experts chosen per token");
  f("model.norm_topk_prob", m.norm_topk_prob, "new model: renormalise the top-k weights");
  f("model.rope_theta", m.rope_theta, "new model: RoPE base");
  f("model.max_position_embeddings", m.max_position_embeddings, "new model: longest sequence");
  f("model.rms_norm_eps", m.rms_norm_eps, "new model: RMSNorm epsilon");
  f("model.initializer_range", m.initializer_range, "new model: std of the normal init");

  DataSection& d = c.data;
  f("data.train", d.train, "directory of <lang>.shard token shards to train on (moegrad data build)");
  f("data.heldout", d.heldout, "directory of held-out <lang>.shard files; empty: no evaluation");
  f("data.languages", d.languages,
    "comma-separated languages to use; empty: every shard in data.train");
  f("data.weights", d.weights,
    "mixture weights 'de:2,en:1' (sequences in that proportion); empty: uniform round-robin");
  f("data.tokenizer", d.tokenizer,
    "tokenizer.json whose <|endoftext|> separates documents in packed sequences");
  f("data.eos_id", d.eos_id, "document separator id when there is no data.tokenizer");
  f("data.seq_len", d.seq_len, "tokens per packed sequence");

  TrainSection& t = c.train;
  f("train.steps", t.steps, "optimizer steps of the whole run");
  f("train.batch_size", t.batch_size, "sequences per micro-batch");
  f("train.grad_accum", t.grad_accum, "micro-batches per optimizer step");
  f("train.lr", t.lr, "peak learning rate");
  f("train.schedule", t.schedule, "learning-rate schedule: constant, cosine or wsd");
  f("train.warmup_steps", t.warmup_steps, "linear warmup steps");
  f("train.warmup_start", t.warmup_start, "warmup starts at this fraction of lr");
  f("train.alpha_f", t.alpha_f, "cosine / wsd end at this fraction of lr");
  f("train.decay_fraction", t.decay_fraction, "wsd: share of the steps spent decaying");
  f("train.beta1", t.beta1, "AdamW beta1");
  f("train.beta2", t.beta2, "AdamW beta2");
  f("train.eps", t.eps, "AdamW epsilon");
  f("train.weight_decay", t.weight_decay, "AdamW decoupled weight decay (every parameter)");
  f("train.clip", t.clip, "global gradient-norm clipping threshold; 0: no clipping");
  f("train.lb_coef", t.lb_coef, "weight of the load-balancing loss; 0: none");
  f("train.lb_kind", t.lb_kind,
    "load-balancing loss: hf (transformers', pooled over layers) or megablocks (per layer)");
  f("train.z_coef", t.z_coef, "weight of the router z-loss; 0: none");
  f("train.seed", t.seed, "seed of the data order");
  f("train.device", t.device,
    "cpu, cuda, cuda:N, or auto (the first GPU when one is present, else cpu)");
  f("train.precision", t.precision,
    "f32, or bf16: mixed precision (bf16 weights, activations and gradients, f32 arithmetic "
    "inside every op, f32 master weights and moments in AdamW, f32 router softmax and losses, "
    "gradients of several micro-batches summed in f32)");
  f("train.expert_gemm", t.expert_gemm,
    "the experts' GEMMs: grouped (cuBLAS's grouped GEMM, planned from each MoE layer's expert "
    "counts, which a GPU step waits for) or gathered (moegrad's own bf16 kernels, which read the "
    "counts on the GPU and gather the tokens' rows in their loads; in f32 and on the CPU they "
    "read the counts on the host; layers whose experts do not all train alike run as grouped)");
  f("train.memory_limit", t.memory_limit,
    "fail allocations past this much memory on the device, as a smaller device would "
    "(e.g. 40GiB, 512MiB, 2e9; units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB); 0: no limit");

  f("freeze.restrict_router", c.freeze.restrict_router,
    "while training, layers with trained experts route only among them (-inf logits for the "
    "others); evaluation routes over all experts");
  AdaptSection& a = c.adapt;
  f("adapt.method", a.method,
    "selective adaptation instead of [freeze] rules: seft (the target language's specific "
    "experts of the last adapt.layers layers, and their routers), ssft (+ adapt.shared_k shared "
    "experts), aeft (every expert), top_n (adapt.top_n experts by gap), random (a random other "
    "language's specific experts), final_layers (every parameter of those layers), full; none");
  f("adapt.language", a.language, "target language (one without experts borrows its parent's)");
  f("adapt.routing", a.routing, "routing.json of moegrad analyze that picks the experts");
  f("adapt.layers", a.layers, "the last N layers adapt");
  f("adapt.shared_k", a.shared_k, "ssft: shared experts per layer");
  f("adapt.top_n", a.top_n, "top_n: experts per layer");
  f("adapt.seed", a.seed, "random: seed of the choice of the other language");
  f("adapt.parents", a.parents,
    "child:parent pairs, e.g. 'uk:ru,ca:es'; none: no pairs; empty: the paper's (ca-es et-fi "
    "mr-hi sk-cs uk-ru ur-ar nl-en)");
  f("adapt.restrict_router", a.restrict_router,
    "expert methods: while training, adapted layers route only among the trained experts");
  f("eval.interval", c.eval.interval, "steps between held-out evaluations; 0: only at the end");
  f("eval.batches", c.eval.batches, "held-out batches per language in an evaluation");
  f("eval.routing_tokens", c.eval.routing_tokens,
    "held-out tokens per language routed for a routing snapshot (moegrad analyze's statistics "
    "and analysis, in runs/<name>/routing/step-N/) at step 0 and each evaluation; 0: none");

  f("profile.start", c.profile.start,
    "first step run under the op-level profiler (moegrad profile's tables, profile.json and "
    "trace.json go to runs/<name>/profile/); 0: none");
  f("profile.steps", c.profile.steps, "steps profiled from profile.start");

  f("run.name", c.run.name, "run name: results go to run.dir/run.name");
  f("run.dir", c.run.dir, "parent directory of runs");
  f("run.checkpoint_interval", c.run.checkpoint_interval,
    "steps between checkpoints; 0: only at the end");
  f("run.keep", c.run.keep, "checkpoints kept; older ones are deleted");
  f("run.log_interval", c.run.log_interval,
    "steps between progress lines when stderr is not a terminal");
}

template <typename T>
std::string ini_value(const T& v) {
  std::ostringstream os;
  if constexpr (std::is_same_v<T, bool>) {
    os << (v ? "true" : "false");
  } else if constexpr (std::is_floating_point_v<T>) {
    os << std::setprecision(std::numeric_limits<T>::max_digits10) << v;
  } else {
    os << v;
  }
  return os.str();
}

void add_list_options(po::options_description& o, TrainConfig& c) {
  o.add_options()("train.group", po::value<std::vector<std::string>>(&c.train.groups)->composing(),
                  "PATTERN [lr_scale=X] [weight_decay=Y]: an AdamW parameter group, e.g. "
                  "'*norm* weight_decay=0'; repeatable, the first matching group wins")("freeze.train", po::value<std::vector<std::string>>()->composing(),
                  "PATTERN: these parameters train (globs over HF names: * ? {a,b} {14..15}); "
                  "repeatable, rules apply in order")(
      "freeze.freeze", po::value<std::vector<std::string>>()->composing(),
      "PATTERN: these parameters do not train")(
      "freeze.experts", po::value<std::vector<std::string>>()->composing(),
      "LAYERS:EXPERTS: these experts' weights train, e.g. '14-15:3,7,12' or '-2,-1:all'")(
      "freeze.rows", po::value<std::vector<std::string>>()->composing(),
      "NAME:ROWS: only these rows of a parameter train, e.g. "
      "'model.embed_tokens.weight:50280-50303'");
}

po::options_description options_for(TrainConfig& c) {
  po::options_description o("Config keys ([section] key = value in the file, or --section.key=value)");
  visit(c, [&](const char* key, auto& field, const char* help) {
    using T = std::decay_t<decltype(field)>;
    o.add_options()(key, po::value<T>(&field)->default_value(field, ini_value(field)), help);
  });
  add_list_options(o, c);
  return o;
}

void check(bool ok, const TrainConfig& c, const char* key, const std::string& what) {
  MOEGRAD_CHECK(ok, c.source, ": ", key, ": ", what);
}

void validate(const TrainConfig& c, const po::variables_map& vm, bool check_inputs) {
  const TrainSection& t = c.train;
  check(t.steps > 0, c, "train.steps", "must be positive");
  check(t.batch_size > 0, c, "train.batch_size", "must be positive");
  check(t.grad_accum > 0, c, "train.grad_accum", "must be positive");
  // Finite too: an eps of inf makes every update 0, and the run would train nothing silently.
  auto finite = [&](double v, bool ok, const char* key, const char* what) {
    check(std::isfinite(v) && ok, c, key, what);
  };
  finite(t.lr, t.lr > 0, "train.lr", "must be a finite number > 0");
  check(t.warmup_steps >= 0, c, "train.warmup_steps", "must be >= 0");
  check(t.beta1 >= 0 && t.beta1 < 1, c, "train.beta1", "must lie in [0, 1)");
  check(t.beta2 >= 0 && t.beta2 < 1, c, "train.beta2", "must lie in [0, 1)");
  finite(t.eps, t.eps > 0, "train.eps", "must be a finite number > 0");
  finite(t.weight_decay, t.weight_decay >= 0, "train.weight_decay", "must be a finite number >= 0");
  finite(t.clip, t.clip >= 0, "train.clip", "must be a finite number >= 0 (0: no clipping)");
  finite(t.lb_coef, t.lb_coef >= 0, "train.lb_coef", "must be a finite number >= 0");
  finite(t.z_coef, t.z_coef >= 0, "train.z_coef", "must be a finite number >= 0");
  check(t.lb_kind == "hf" || t.lb_kind == "megablocks", c, "train.lb_kind",
        "'" + t.lb_kind + "' is not hf or megablocks");
  try {
    Device::select(t.device);
  } catch (const Error& e) {
    throw Error(c.source + ": train.device: " + e.what());
  }
  try {
    t.memory_limit_bytes();
  } catch (const Error& e) {
    throw Error(c.source + ": train.memory_limit: " + e.what());
  }
  check(t.precision == "f32" || t.precision == "bf16", c, "train.precision",
        "'" + t.precision + "': expected f32 or bf16");
  check(t.expert_gemm == "grouped" || t.expert_gemm == "gathered", c, "train.expert_gemm",
        "'" + t.expert_gemm + "': expected grouped or gathered");
  check(c.data.seq_len >= 2, c, "data.seq_len", "must be at least 2");
  if (check_inputs) {
    check(!c.data.train.empty(), c, "data.train", "is required (a directory of token shards)");
    check(fs::is_directory(c.data.train), c, "data.train",
          "'" + c.data.train + "' is not a directory");
    check(c.data.heldout.empty() || fs::is_directory(c.data.heldout), c, "data.heldout",
          "'" + c.data.heldout + "' is not a directory");
    check(c.data.tokenizer.empty() || fs::is_regular_file(c.data.tokenizer), c,
          "data.tokenizer", "'" + c.data.tokenizer + "' does not exist");
    check(!c.data.tokenizer.empty() || c.data.eos_id >= 0, c, "data.eos_id",
          "set data.tokenizer or data.eos_id (the document separator)");
  }
  check(c.data.eos_id >= -1 && c.data.eos_id <= std::numeric_limits<int32_t>::max(), c,
        "data.eos_id", "must be a token id (or -1: the tokenizer's <|endoftext|>), got " +
                           std::to_string(c.data.eos_id));
  check(c.eval.interval >= 0, c, "eval.interval", "must be >= 0");
  check(c.eval.batches > 0, c, "eval.batches", "must be positive");
  check(c.eval.routing_tokens >= 0, c, "eval.routing_tokens", "must be >= 0");
  check(c.run.checkpoint_interval >= 0, c, "run.checkpoint_interval", "must be >= 0");
  check(c.run.keep >= 1, c, "run.keep", "must be at least 1");
  check(c.run.log_interval >= 1, c, "run.log_interval", "must be at least 1");
  static const std::set<std::string> kAdaptMethods = {
      "none", "seft", "ssft", "aeft", "top_n", "random", "final_layers", "full"};
  check(kAdaptMethods.count(c.adapt.method) > 0, c, "adapt.method",
        "'" + c.adapt.method + "' is not one of none, seft, ssft, aeft, top_n, random, "
        "final_layers, full");
  check(c.adapt.layers >= 1, c, "adapt.layers", "must be at least 1");
  check(c.adapt.shared_k >= 0, c, "adapt.shared_k", "must be >= 0");
  check(c.adapt.top_n >= 1, c, "adapt.top_n", "must be at least 1");
  try {
    eval::parse_parents(c.adapt.parents);
  } catch (const Error& e) {
    throw Error(c.source + ": adapt.parents: " + e.what());
  }
  if (c.adapt.method != "none") {
    check(c.freeze.rules.empty(), c, "adapt.method",
          "chooses what trains: leave the [freeze] rules out (or set adapt.method = none)");
    const bool needs_routing = c.adapt.method != "aeft" && c.adapt.method != "final_layers" &&
                               c.adapt.method != "full";
    if (needs_routing && check_inputs)
      check(fs::is_regular_file(c.adapt.routing), c, "adapt.routing",
            "'" + c.adapt.routing + "' is not a file (adapt.method " + c.adapt.method +
                " picks experts from moegrad analyze's routing.json)");
  }
  check(c.profile.start >= 0, c, "profile.start", "must be >= 0");
  check(c.profile.steps >= 1, c, "profile.steps", "must be at least 1");
  check(!c.run.name.empty() && c.run.name.find('/') == std::string::npos, c, "run.name",
        "must be a non-empty name without '/'");
  if (!c.model.from.empty()) {
    check(!check_inputs || fs::is_regular_file(fs::path(c.model.from) / "config.json"), c,
          "model.from", "'" + c.model.from + "' is not a model directory (no config.json)");
    visit(const_cast<TrainConfig&>(c), [&](const char* key, auto&, const char*) {
      const std::string k = key;
      if (k.rfind("model.", 0) == 0 && k != "model.from" && k != "model.seed")
        check(vm[k].defaulted(), c, key,
              "cannot be set with model.from (the shape comes from its config.json)");
    });
  } else {
    c.model.config.validate(c.source + " [model]");
  }
  c.language_weights();  // these parse, so a malformed entry fails here
  c.param_groups();
  try {
    c.schedule().validate();
  } catch (const Error& e) {
    throw Error(c.source + ": [train] " + e.what());
  }
}

}  // namespace

po::options_description config_options() {
  static TrainConfig defaults;
  return options_for(defaults);
}

AdamWOptions TrainConfig::adamw() const {
  return AdamWOptions{train.beta1, train.beta2, train.eps, train.weight_decay};
}

std::vector<ParamGroup> TrainConfig::param_groups() const {
  std::vector<ParamGroup> out;
  for (const std::string& text : train.groups) {
    std::vector<std::string> words = split_list(text, ' ');
    MOEGRAD_CHECK(!words.empty(), source, ": train.group: empty group");
    ParamGroup g;
    g.name = g.pattern = words[0];
    g.weight_decay = train.weight_decay;
    for (size_t i = 1; i < words.size(); ++i) {
      const size_t eq = words[i].find('=');
      const std::string key = words[i].substr(0, eq);
      double value = 0;
      size_t used = 0;
      bool ok = eq != std::string::npos && (key == "lr_scale" || key == "weight_decay");
      if (ok) {
        try {
          value = std::stod(words[i].substr(eq + 1), &used);
        } catch (const std::exception&) {
          ok = false;
        }
        ok = ok && used == words[i].size() - eq - 1 && value >= 0;
      }
      MOEGRAD_CHECK(ok, source, ": train.group '", text, "': '", words[i],
                    "' is not lr_scale=X or weight_decay=Y with X, Y >= 0");
      (key == "lr_scale" ? g.lr_scale : g.weight_decay) = value;
    }
    out.push_back(g);
  }
  return out;
}

ScheduleConfig TrainConfig::schedule() const {
  ScheduleConfig s;
  s.kind = parse_schedule_kind(train.schedule);
  s.lr = train.lr;
  s.warmup_steps = train.warmup_steps;
  s.warmup_start_fraction = train.warmup_start;
  s.alpha_f = train.alpha_f;
  s.decay_fraction = train.decay_fraction;
  s.total_steps = train.steps;
  return s;
}

std::string TrainConfig::run_dir() const { return (fs::path(run.dir) / run.name).string(); }

int64_t TrainConfig::tokens_per_step() const {
  return train.grad_accum * train.batch_size * data.seq_len;
}

bool TrainConfig::restricts_router() const {
  const bool expert_method = adapt.method != "none" && adapt.method != "final_layers" &&
                             adapt.method != "full";
  return freeze.restrict_router || (expert_method && adapt.restrict_router);
}

std::vector<std::string> TrainConfig::language_list() const {
  return split_list(data.languages, ',');
}

std::vector<std::pair<std::string, double>> TrainConfig::language_weights() const {
  std::vector<std::pair<std::string, double>> out;
  for (const std::string& item : split_list(data.weights, ',')) {
    const size_t colon = item.find(':');
    double w = 0;
    size_t used = 0;
    bool ok = colon != std::string::npos && colon > 0;
    if (ok) {
      try {
        w = std::stod(item.substr(colon + 1), &used);
      } catch (const std::exception&) {
        ok = false;
      }
      ok = ok && used == item.size() - colon - 1 && w > 0;
    }
    MOEGRAD_CHECK(ok, source, ": data.weights: '", item,
                  "' is not LANG:WEIGHT with a positive weight (e.g. 'de:2,en:1')");
    out.emplace_back(item.substr(0, colon), w);
  }
  return out;
}

DType TrainSection::dtype() const { return precision == "bf16" ? DType::BF16 : DType::F32; }

int64_t TrainSection::memory_limit_bytes() const {
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1},         {"B", 1},           {"KiB", 0x1p10}, {"MiB", 0x1p20}, {"GiB", 0x1p30},
      {"TiB", 0x1p40}, {"KB", 1e3},        {"MB", 1e6},     {"GB", 1e9},     {"TB", 1e12}};
  const char* text = memory_limit.c_str();
  char* end = nullptr;
  const double number = std::strtod(text, &end);
  std::string unit(end);
  while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
  for (const auto& [name, scale] : kUnits) {
    if (end == text || unit != name) continue;
    const double bytes = number * scale;
    MOEGRAD_CHECK(std::isfinite(bytes) && bytes >= 0 && bytes < 0x1p62, "'", memory_limit,
                  "' is not a size from 0 bytes to 4 EiB");
    return int64_t(bytes);
  }
  throw Error("'" + memory_limit +
              "' is not a size (a number and a unit: B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)");
}

TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides,
                        bool check_inputs) {
  MOEGRAD_CHECK(fs::is_regular_file(path), "config file '", path, "' does not exist");
  std::ifstream in(path);
  MOEGRAD_CHECK(in, "cannot read config file '", path, "'");
  return parse_config(in, path, overrides, check_inputs);
}

TrainConfig parse_config(std::istream& in, const std::string& path,
                         const std::vector<std::string>& overrides, bool check_inputs) {
  TrainConfig c;
  c.source = path;
  po::options_description options = options_for(c);
  po::variables_map vm;
  std::vector<std::string> rules;  // "train PATTERN", ... in file order, then the command line's
  auto take_rules = [&](const po::parsed_options& parsed) {
    for (const po::option& o : parsed.options)
      if (is_freeze_rule(o.string_key))
        for (const std::string& v : o.value)
          rules.push_back(o.string_key.substr(std::string("freeze.").size()) + " " + v);
  };
  // A variables_map keeps the first value it is given: the command line goes in first.
  auto parse = [&](const std::string& where, auto&& fn) {
    try {
      return fn();
    } catch (const po::unknown_option& e) {
      // On the command line boost names the whole argument ("--train.lrr=1").
      std::string key = e.get_option_name();
      key = key.substr(key.find_first_not_of('-'));
      key = key.substr(0, key.find('='));
      throw Error(where + ": unknown key '" + key + "' (see 'moegrad train --help' for every key)");
    } catch (const po::error& e) {
      throw Error(where + ": " + e.what());
    }
  };
  po::parsed_options cli = parse("command line", [&] {
    po::parsed_options p = po::command_line_parser(overrides).options(options).run();
    po::store(p, vm);
    return p;
  });
  po::parsed_options file = parse(path, [&] {
    po::parsed_options p = po::parse_config_file(in, options, false);
    po::store(p, vm);
    return p;
  });
  parse(path, [&] {
    po::notify(vm);
    return 0;
  });
  take_rules(file);
  take_rules(cli);
  c.freeze.rules = rules;
  validate(c, vm, check_inputs);
  return c;
}

std::string to_ini(const TrainConfig& config) {
  std::ostringstream os;
  os << "# resolved config of " << config.source << "\n";
  std::string section;
  visit(const_cast<TrainConfig&>(config), [&](const char* key, auto& field, const char*) {
    const std::string k = key;
    const std::string s = k.substr(0, k.find('.'));
    if (s != section) {
      os << (section.empty() ? "" : "\n") << "[" << s << "]\n";
      section = s;
      if (s == "freeze")
        for (const std::string& rule : config.freeze.rules) {
          const size_t sp = rule.find(' ');
          os << rule.substr(0, sp) << " = " << rule.substr(sp + 1) << "\n";
        }
      if (s == "train")
        for (const std::string& group : config.train.groups) os << "group = " << group << "\n";
    }
    os << k.substr(k.find('.') + 1) << " = " << ini_value(field) << "\n";
  });
  return os.str();
}

}  // namespace moegrad::train
