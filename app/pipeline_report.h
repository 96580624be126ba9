// report.md of a `moegrad run` experiment, from the files its stages wrote (summary.json,
// trainable.json, routing.json, results.json, profile.json and the SVG figures), in the shape
// of the papers' tables. A stage that has not run leaves its section saying so.
#pragma once
#include <string>
#include <vector>

#include "train/pipeline_config.h"

namespace moegrad::app {

struct ReportInputs {
  const train::PipelineConfig* config = nullptr;
  std::string dir;                  // pipeline.dir
  std::vector<std::string> models;  // "base", "cpt", "adapt-<method>"...
  std::string adapted_from;         // the model the adaptation variants start from
  std::vector<std::string> stages;  // in the order they ran
};

// Markdown; figure links are relative to `dir`, where report.md goes.
std::string pipeline_report(const ReportInputs& in);

}  // namespace moegrad::app
