// Router steering at inference (Bandarkar et al.; the hard form is SteerMoE's): in chosen layers,
// promote or demote experts by editing the router's scores before its softmax and top-k, and
// pick the experts to steer from a routing analysis by the tau threshold.
//
// Steering file (JSON):
//   {"mode": "hard" | "soft",            optional, default "hard"
//    "delta": 0.01,                      hard form's margin, >= 0, optional
//    "lambda": 1.0,                      soft form's scale, >= 0, optional
//    "layers": [first, last],            the steered layers, an inclusive range;
//    or "layer_list": [l, ...],          or an explicit list (exactly one of the two)
//    "promote": {"<layer>": [e, ...]},   per steered layer, and/or
//    "promote_all": [e, ...],            for every steered layer (the union of both is used)
//    "demote", "demote_all":             the same shapes
//    "weights": {"<layer>": {"<e>": w}}, soft form's w_e >= 0 of steered experts (default 1)
//    "provenance": anything}             where the file came from; not read
// Any other field is an error. Errors name the file and the field: malformed JSON, an unknown
// mode or field, a negative delta or lambda, a layer outside the model's layers or the steered
// ones, an expert outside the model's experts, an expert both promoted and demoted in a layer,
// a weight for an expert that is not steered.
//
// The intervention: per token row, s = log_softmax(logits) over the experts; hard form: each
// promoted expert's s_e = max(s) + delta, each demoted one's s_e = min(s) - delta (max and min
// of the row before the change); soft form: s_e += lambda * w_e for promoted experts and
// s_e -= lambda * w_e for demoted ones. The router's softmax and top-k then see s: as softmax
// ignores a per-row constant, softmax(s) is the distribution of the steered logits, so the
// routing weights come from the steered scores. Other layers pass through untouched. More
// promoted experts than top-k tie in the hard form, and the top-k takes the lowest-numbered.
// Steering is for inference: the result carries no gradient to the router, so it refuses
// logits that require one while gradients are recorded.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/io/json_reader.h"
#include "moe/hooks.h"

namespace moegrad::eval {

enum class SteeringMode { Hard, Soft };
const char* steering_mode_name(SteeringMode mode);  // "hard" or "soft"

struct LayerSteering {
  std::vector<int64_t> promote, demote;  // sorted, disjoint
  std::map<int64_t, double> weights;     // soft form: w_e of steered experts; absent means 1
};

struct Steering {
  SteeringMode mode = SteeringMode::Hard;
  double delta = 0.01;
  double lambda = 1.0;
  std::map<int64_t, LayerSteering> layers;  // every steered layer, even one with no experts
  nlohmann::json provenance;                // null when none

  // The file format above: "layers" when the steered layers are contiguous, else "layer_list";
  // "promote_all" / "demote_all" when every layer has the same set, else per layer.
  nlohmann::ordered_json to_json() const;
};

// The model's sizes a steering must fit; 0 leaves that check out.
struct SteeringLimits {
  int64_t layers = 0, experts = 0;
};

// `source` starts every error message ("steering file PATH").
Steering parse_steering(const nlohmann::json& j, const std::string& source,
                        const SteeringLimits& limits = {});
Steering read_steering(const std::string& path, const SteeringLimits& limits = {});

// The intervention for RouterHooks::intervene. Also checks each steered expert against the
// logits' number of experts.
RouterIntervention steering_intervention(const Steering& steering);

// The middle third of num_layers layers, where Bandarkar et al. find routing closest across
// languages and steering helps: floor(L / 3) .. ceil(2L / 3) - 1 (16 layers: 5..10).
std::vector<int64_t> middle_layers(int64_t num_layers);

// Expert identification by the tau threshold (Bandarkar et al.), on activation frequencies:
// the share of a language's tokens that route an expert among their top-k, which is the
// analysis's usage times top_k (every token makes k selections). An expert is chosen when its
// frequency exceeds the reference's by more than tau, or, with num_std > 0, when the difference
// exceeds the mean difference over the layer's experts by more than num_std population standard
// deviations of them (the paper's alternative: 3).
struct ExpertThreshold {
  double tau = 0.3;
  double num_std = 0;
};

struct PreferredExpert {
  int64_t expert = 0;
  double difference = 0;  // the language's frequency minus the reference's
};

// Per layer, the experts `language` activates more than `reference` does, largest difference
// first (ties: lower expert first). reference "": the mean expert's frequency, top_k / experts.
// `analysis` is eval::analyze_routing's output (routing.json); errors name its file and field,
// and for a missing language the ones the analysis has.
std::vector<std::vector<PreferredExpert>> preferred_experts(const JsonReader& analysis,
                                                            const std::string& language,
                                                            const std::string& reference,
                                                            const ExpertThreshold& threshold);

// Language-specialised experts of `language`: those it activates more than the analysis's
// English does. (Not routing_metrics' language_specific_experts, which is Paper 1's gap rule.)
std::vector<std::vector<PreferredExpert>> language_specialised_experts(
    const JsonReader& analysis, const std::string& language, const ExpertThreshold& threshold);

// Task experts: those `task`'s text (a "language" of the analysis, e.g. English task data)
// activates more than the mean expert.
std::vector<std::vector<PreferredExpert>> task_experts(const JsonReader& analysis,
                                                       const std::string& task,
                                                       const ExpertThreshold& threshold);

// Layers first..last, inclusive.
struct LayerRange {
  int64_t first = 0, last = 0;
};

// "FIRST-LAST" or one layer "N", as --layers and the pipeline's steering.layers take them.
// Throws moegrad::Error "must be FIRST-LAST (e.g. 5-10) or one layer, got '...'" otherwise
// (the caller names the flag or key).
LayerRange parse_layer_range(const std::string& text);

struct SteeringFromAnalysisOptions {
  std::string language;   // whose preferred experts to promote; "": the analysis's English
  std::string reference;  // compared with this language; "": the mean expert (task experts)
  std::optional<LayerRange> layers;  // none: middle_layers
  ExpertThreshold threshold;
  SteeringMode mode = SteeringMode::Hard;
  double delta = 0.01, lambda = 1.0;
};

// A Steering promoting, in each chosen layer, preferred_experts(language, reference). The soft
// form weighs each promoted expert by its frequency difference (so lambda is in log-probability
// per unit of frequency). The provenance records the analysis's English, the languages and the
// threshold.
Steering steering_from_analysis(const JsonReader& analysis,
                                const SteeringFromAnalysisOptions& options);

}  // namespace moegrad::eval
