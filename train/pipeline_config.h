// The config of `moegrad run`: one INI file for a whole experiment (shared/spec/paper-recipe.md):
// the data, an English base model (pretrained here or an HF directory), continual pre-training,
// routing analyses, selective adaptation variants, benchmarks, steering and a profile.
//
// [pipeline], [data], [analysis], [benchmarks], [steering] and [profile] hold the keys of
// pipeline_options(). The training stages' sections [pretrain], [cpt] and [adapt] hold keys of
// `moegrad train`'s config written as section.key ("train.steps = 300" under [cpt]); the
// pipeline adds what joins the stages (model.from, the data paths, run.dir and run.name, the
// [adapt] method, language and analysis), which those sections may therefore not set.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <boost/program_options.hpp>

namespace moegrad::train {

struct PipelineConfig {
  std::string source;  // the file it was read from

  // [pipeline]
  std::string dir;                     // every stage's output goes under it
  std::vector<std::string> languages;  // every language of the data
  std::string english = "en";          // the base model's language, reference of divergences
  std::string target;                  // the language adaptation is for
  std::string parents;                 // child:parent pairs; empty: the papers'
  std::string base;                    // an HF model directory; empty: pretrain one ([pretrain])
  std::vector<std::string> stages;     // the stages that run, in order (kPipelineStages)
  std::string device = "auto";

  // [data]
  std::string corpus;     // PATH/<lang>/{train,heldout}: documents, tokenized into dir/shards
  std::string shards;     // instead: token shards already built, DIR/{train,heldout}
  std::string tokenizer;  // tokenizer.json; empty: the base's, else one trained on English
  int64_t vocab_size = 4096;  // of a trained tokenizer

  // [pretrain], [cpt], [adapt]: train config keys in file order, then the command line's.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> stage_keys;

  // [analysis]
  int64_t analysis_tokens = 65536;
  int64_t analysis_seq_len = 0;  // 0: the cpt stage's data.seq_len
  int64_t analysis_batch_size = 8;
  double alpha = 0.01;
  int64_t shared_k = 5;
  int64_t overlap_min_count = 2;

  // [adapt]
  std::vector<std::string> methods;  // adapt.method of each variant

  // [benchmarks]: "proxy" (made from held-out documents), a directory, or "none"
  std::string multiblimp = "proxy";
  std::string belebele = "proxy";
  std::string perplexity = "heldout";  // held-out documents ("heldout": the corpus's), or "none"
  int64_t proxy_items = 100;
  int64_t shots = 0;
  std::string prompt = "letters";
  int64_t perplexity_tokens = 20000;
  int64_t batch_tokens = 4096;

  // [steering]
  std::string steer_model = "cpt";  // base, cpt or adapt-<method>
  std::string steer_language;       // whose experts are promoted; empty: english
  std::string steer_reference;
  std::string steer_layers;  // FIRST-LAST; empty: the middle third
  double tau = 0.3;
  double num_std = 0;
  std::string steer_mode = "hard";
  double delta = 0.01;
  double lambda = 1.0;

  // [profile]
  int64_t profile_steps = 3;
  int64_t profile_warmup = 1;

  bool runs(const std::string& stage) const;
  // The training stages that run: "pretrain" (without a base), "cpt", "adapt-<method>"...
  std::vector<std::string> training_stages() const;
};

// The stages in the order they run; [pipeline] stages picks among them.
extern const char* const kPipelineStages[];

boost::program_options::options_description pipeline_options();

// Reads `path`, applies `overrides` (--section.key=value; --cpt.train.steps=10 for a stage's
// train key) and validates: unknown keys, keys of a stage that the pipeline sets, bad values
// and missing inputs are errors naming the file and the key.
PipelineConfig load_pipeline(const std::string& path,
                             const std::vector<std::string>& overrides = {});

// The config of training stage `stage` ("pretrain", "cpt", "adapt-seft"...) as an INI file for
// load_config: the stage section's keys, then `joined` (the keys the pipeline sets).
std::string stage_ini(const PipelineConfig& config, const std::string& stage,
                      const std::vector<std::pair<std::string, std::string>>& joined);

}  // namespace moegrad::train
