// moegrad train: a training run from an experiment config (train/config.h, train/trainer.h).
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "app/cli.h"
#include "app/model_args.h"
#include "app/progress.h"
#include "train/config.h"
#include "train/trainer.h"

namespace moegrad::app {
namespace {

po::options_description train_options() {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help and exit")(
      "config", po::value<std::string>(), "experiment config (INI); required")(
      "resume", "continue the run in run.dir/run.name from its latest checkpoint");
  return options;
}

std::string format_loss(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

}  // namespace

std::string train_usage() {
  std::ostringstream os;
  os << "Usage: moegrad train --config FILE [--resume] [--section.key=value ...]\n\n"
        "Trains an OLMoE model as the config says: a new model or one continued from an HF\n"
        "directory, on token shards (moegrad data build), with the freeze mask of [freeze].\n"
        "Results go to run.dir/run.name: config.ini, trainable.json, metrics.jsonl (one line\n"
        "per step and per evaluation), train.log, checkpoints/, model/ (the final HF model)\n"
        "and summary.json. Any config key can be overridden: --train.lr=1e-4.\n\n"
     << train_options() << "\n"
     << train::config_options();
  return os.str();
}

namespace {

// moegrad train, or moegrad adapt: the same run, whose config must choose an [adapt] method.
int train_command(const std::string& command, const Args& args, std::string (*usage)()) {
  Args own, overrides;
  split_config_overrides(args, own, overrides);
  po::variables_map vm = parse_options(command, train_options(), own);
  if (vm.count("help")) {
    std::cout << usage();
    return 0;
  }
  const std::string path = required(vm, command, "config");
  train::TrainConfig config = train::load_config(path, overrides);
  if (command == "adapt" && config.adapt.method == "none")
    throw Error(path + ": adapt.method: moegrad adapt needs an [adapt] method (seft, ssft, aeft, "
                "top_n, random, final_layers or full)");

  Progress progress("train", config.train.steps, "steps");
  train::TrainerCallbacks callbacks;
  callbacks.on_message = [&](const std::string& line) { progress.print(line); };
  callbacks.on_step = [&](const train::StepReport& r) {
    std::ostringstream suffix;
    suffix << "loss " << format_loss(r.stats.loss) << " lr " << r.lr << " "
           << std::lround(double(r.stats.tokens) / r.seconds) << " tok/s";
    progress.update(r.step, suffix.str());
  };
  train::Trainer trainer(config, vm.count("resume") > 0, callbacks);
  trainer.run();
  progress.finish();
  std::cout << "run: " << config.run_dir() << "\n";
  return 0;
}

}  // namespace

int run_train(const Args& args) { return train_command("train", args, train_usage); }

std::string adapt_usage() {
  std::ostringstream os;
  os << "Usage: moegrad adapt --config FILE [--resume] [--section.key=value ...]\n\n"
        "Selective adaptation: moegrad train with a config whose [adapt] section chooses what\n"
        "trains from a routing analysis (moegrad analyze's routing.json): the target language's\n"
        "specific experts of the last layers and their routers (seft), plus shared experts\n"
        "(ssft), or the baselines (aeft, top_n, random, final_layers, full). The exact trainable\n"
        "count and percentage are printed and saved in trainable.json with the chosen experts;\n"
        "expert methods route among the trained experts while training (adapt.restrict_router).\n"
        "Every key of 'moegrad train --help' applies.\n\n"
     << train_options();
  return os.str();
}

int run_adapt(const Args& args) { return train_command("adapt", args, adapt_usage); }

}  // namespace moegrad::app
