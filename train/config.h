// The experiment config of `moegrad train`: an INI file (Boost.Program_options syntax) with
// sections [model] [data] [train] [freeze] [eval] [run], overridable from the command line as
// --section.key=value. Every key, its meaning and its default is in config_options(), which
// `moegrad train --help` prints; an unknown key, a bad value or a missing file is an error
// naming the file and the key. Relative paths are taken from the current directory, as on the
// command line.
#pragma once
#include <cstdint>
#include <istream>
#include <string>
#include <utility>
#include <vector>

#include <boost/program_options.hpp>

#include "nn/olmoe_config.h"
#include "train/adamw.h"
#include "train/adapt.h"
#include "train/schedule.h"

namespace moegrad::train {

struct ModelSection {
  std::string from;    // an HF model directory to continue from; empty: a new model
  OlmoeConfig config;  // the new model's shape (ignored with `from`)
  uint64_t seed = 0;   // initialisation of a new model
};

struct DataSection {
  std::string train;    // directory of <lang>.shard files (moegrad data build)
  std::string heldout;  // the same for evaluation; empty: no evaluation
  std::string languages;  // comma list; empty: every shard in `train`
  std::string weights;    // "de:2,en:1"; empty: uniform round-robin over languages
  std::string tokenizer;  // tokenizer.json: gives the document separator <|endoftext|>
  int64_t eos_id = -1;    // the separator when there is no tokenizer
  int64_t seq_len = 256;
};

struct TrainSection {
  int64_t steps = 100;
  int64_t batch_size = 8;  // sequences per micro-batch
  int64_t grad_accum = 1;  // micro-batches per optimizer step
  double lr = 4e-4;
  std::string schedule = "cosine";
  int64_t warmup_steps = 0;
  double warmup_start = 0.1;  // warmup starts at this fraction of lr
  double alpha_f = 0.1;       // the schedule ends at this fraction of lr
  double decay_fraction = 0.2;  // wsd: share of the steps spent decaying
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
  double clip = 1.0;
  double lb_coef = 0.01;
  std::string lb_kind = "hf";  // hf (pooled over layers) or megablocks (per layer)
  double z_coef = 0.0;
  // AdamW parameter groups, "PATTERN [lr_scale=X] [weight_decay=Y]"; the first match wins.
  std::vector<std::string> groups;
  uint64_t seed = 0;  // data order
  std::string device = "auto";
  std::string precision = "f32";  // f32 | bf16 (mixed precision)
  std::string expert_gemm = "grouped";  // grouped | gathered (OlmoeExperts' ExpertGemm)
  DType dtype() const;             // the parameters' and activations' dtype under `precision`
  // "40GiB", "512MiB", "2e9" bytes: allocations that would take the device past it fail, as on
  // a device of that size; "0": no limit beyond the device's own.
  std::string memory_limit = "0";
  int64_t memory_limit_bytes() const;  // memory_limit in bytes (0: none); throws when malformed
};

struct FreezeSection {
  // Rules in file order, each "train PATTERN", "freeze PATTERN", "experts L:E" or "rows N:R".
  std::vector<std::string> rules;
  bool restrict_router = false;  // adapted layers route only among their trained experts
};

struct EvalSection {
  int64_t interval = 0;  // steps between held-out evaluations; 0: only at the end
  int64_t batches = 4;   // held-out batches per language
  // Held-out tokens per language routed for a routing snapshot at each evaluation (and at step
  // 0 of a new run); 0: none.
  int64_t routing_tokens = 0;
};

struct ProfileSection {
  int64_t start = 0;  // the first profiled step (counting from 1); 0: no profiling
  int64_t steps = 3;  // profiled steps from `start`
};

struct RunSection {
  std::string name = "run";
  std::string dir = "runs";
  int64_t checkpoint_interval = 0;  // 0: only at the end
  int64_t keep = 3;                 // checkpoints kept (older ones are deleted)
  int64_t log_interval = 1;         // steps between progress lines when not on a terminal
};

struct TrainConfig {
  std::string source;  // the file it was read from
  ModelSection model;
  DataSection data;
  TrainSection train;
  FreezeSection freeze;
  AdaptSection adapt;
  EvalSection eval;
  ProfileSection profile;
  RunSection run;

  std::string run_dir() const;  // run.dir / run.name
  int64_t tokens_per_step() const;  // grad_accum x batch_size x seq_len
  // Whether adapted layers route only among their trained experts while training
  // (freeze.restrict_router, or an [adapt] method that trains experts).
  bool restricts_router() const;
  std::vector<std::string> language_list() const;
  std::vector<std::pair<std::string, double>> language_weights() const;
  ScheduleConfig schedule() const;  // from the [train] keys
  AdamWOptions adamw() const;
  std::vector<ParamGroup> param_groups() const;  // parsed train.group entries
};

boost::program_options::options_description config_options();

// Reads `path`, then applies `overrides` ("--section.key=value" strings, which win over the
// file), and validates. check_inputs false skips whether the files it reads exist (the [data]
// paths, model.from, adapt.routing): benchmarks on random tokens, or a config checked before
// the stages that make its inputs have run.
TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {},
                        bool check_inputs = true);
// The same for a config's text; `source` names it in errors (e.g. "pipeline.cfg [cpt]").
TrainConfig parse_config(std::istream& in, const std::string& source,
                         const std::vector<std::string>& overrides = {}, bool check_inputs = true);

// The resolved config as an INI file that load_config reads back to the same values.
std::string to_ini(const TrainConfig& config);

}  // namespace moegrad::train
