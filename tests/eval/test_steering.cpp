// Router steering: the file format and its errors, the hard and soft forms on hand-made logits,
// a steered model that must route every token to the promoted expert, and the tau-threshold
// identification of experts from a routing analysis.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "autograd/grad_mode.h"
#include "core/random.h"
#include "eval/steering.h"
#include "moe/olmoe.h"
#include "moe/router.h"
#include "tests/testing.h"
#include "tests/tiny_olmoe.h"

namespace moegrad::eval {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

Steering parse(const std::string& text, SteeringLimits limits = {4, 6}) {
  return parse_steering(json::parse(text), "steering file s.json", limits);
}

std::vector<int64_t> promoted(const Steering& s, int64_t layer) {
  return s.layers.at(layer).promote;
}

TEST(Steering, ParsesRangesListsAndTheUnionOfPerLayerAndAllLayerSets) {
  const Steering s = parse(R"({"mode": "soft", "lambda": 2, "layers": [1, 3],
      "promote_all": [4, 0], "promote": {"2": [5, 4]}, "demote": {"3": [1]},
      "weights": {"2": {"5": 0.5}}, "provenance": {"by": "hand"}})");
  EXPECT_EQ(s.mode, SteeringMode::Soft);
  EXPECT_EQ(s.lambda, 2.0);
  EXPECT_EQ(s.delta, 0.01);  // the default
  ASSERT_EQ(s.layers.size(), 3u);
  EXPECT_EQ(promoted(s, 1), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(promoted(s, 2), (std::vector<int64_t>{0, 4, 5}));
  EXPECT_EQ(s.layers.at(3).demote, (std::vector<int64_t>{1}));
  EXPECT_EQ(s.layers.at(2).weights.at(5), 0.5);

  const Steering listed = parse(R"({"layer_list": [3, 0], "demote_all": [2]})");
  EXPECT_EQ(listed.mode, SteeringMode::Hard);
  ASSERT_EQ(listed.layers.size(), 2u);
  EXPECT_EQ(listed.layers.begin()->first, 0);
  EXPECT_TRUE(listed.layers.at(3).promote.empty());

  // to_json writes what parses back to the same steering, and the compact forms where they fit.
  const auto j = s.to_json();
  EXPECT_EQ(j["layers"], json::parse("[1, 3]"));
  EXPECT_FALSE(j.contains("promote_all"));
  EXPECT_EQ(j["provenance"]["by"], "hand");
  const Steering again = parse(j.dump());
  for (int64_t l = 1; l <= 3; ++l) {
    EXPECT_EQ(promoted(again, l), promoted(s, l));
    EXPECT_EQ(again.layers.at(l).demote, s.layers.at(l).demote);
    EXPECT_EQ(again.layers.at(l).weights, s.layers.at(l).weights);
  }
  const auto lj = listed.to_json();
  EXPECT_EQ(lj["layer_list"], json::parse("[0, 3]"));
  EXPECT_EQ(lj["demote_all"], json::parse("[2]"));
}

TEST(Steering, ErrorsNameTheFileAndTheField) {
  auto error = [](const std::string& text) { return testing::error_of([&] { parse(text); }); };
  EXPECT_EQ(error(R"({"mode": "medium", "layers": [0, 1]})"),
            "steering file s.json: mode: unknown mode \"medium\" (hard or soft)");
  EXPECT_EQ(error(R"({"layers": [0, 1], "promote_all": [6]})"),
            "steering file s.json: promote_all: expert 6 out of range for a model of 6 experts");
  EXPECT_EQ(error(R"({"layers": [0, 1], "demote": {"1": [2, -1]}})"),
            "steering file s.json: demote.1: expert -1 is negative");
  EXPECT_EQ(error(R"({"layers": [2, 4]})"),
            "steering file s.json: layers: layer 4 out of range for a model of 4 layers");
  EXPECT_EQ(error(R"({"layer_list": [0, 9]})"),
            "steering file s.json: layer_list: layer 9 out of range for a model of 4 layers");
  EXPECT_EQ(error(R"({"layers": [0, 1], "lambda": -1})"),
            "steering file s.json: lambda: must be a non-negative number, got -1");
  EXPECT_EQ(error(R"({"layers": [0, 1], "promote": {"2": [1]}})"),
            "steering file s.json: promote.2: layer 2 is not among the steered layers (0, 1)");
  EXPECT_EQ(error(R"({"layers": [0, 1], "promote_all": [1], "demote": {"0": [1]}})"),
            "steering file s.json: demote: expert 1 is both promoted and demoted in layer 0");
  EXPECT_EQ(
      error(R"({"layers": [0, 1], "promote_all": [1], "weights": {"0": {"2": 1}}})"),
      "steering file s.json: weights.0.2: expert 2 is neither promoted nor demoted in layer 0");
  testing::expect_error([&] { parse(R"({"layers": [0, 1], "promte": [1]})"); },
                        "steering file s.json: promte: unknown field");
  testing::expect_error([&] { parse(R"({"promote_all": [1]})"); },
                        "layers: give exactly one of 'layers'");
  testing::expect_error([&] { parse(R"({"layers": [2, 1]})"); },
                        "first layer 2 is after the last 1");
  testing::expect_error([&] { parse(R"({"layers": [0, 1], "promote": {"x": [1]}})"); },
                        "promote.x: layer 'x' is not a non-negative integer");
  testing::expect_error([&] { parse(R"({"layers": [0, 1.5]})"); },
                        "layers: layer 1.5 is not an integer");

  const fs::path file =
      fs::temp_directory_path() / ("moegrad_steering_" + std::to_string(::getpid()) + ".json");
  std::ofstream(file) << R"({"layers": [0, 1], )";
  testing::expect_error([&] { read_steering(file.string()); },
                        "steering file " + file.string() + ": malformed JSON");
  std::ofstream(file) << R"({"layers": [0, 1], "promote_all": [7]})";
  testing::expect_error(
      [&] {
        read_steering(file.string(), {4, 6});
      },
      "steering file " + file.string() + ": promote_all: expert 7 out of range");
  EXPECT_EQ(read_steering(file.string()).layers.size(), 2u);  // no limits: no range check
  fs::remove(file);
}

// Rows: increasing, decreasing, and uniform logits over 5 experts.
Tensor hand_logits() {
  return from_vector<double>({0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 1, 1, 1, 1, 1}, {3, 5});
}

// log_softmax of one row, computed naively.
std::vector<double> log_softmax_row(const std::vector<double>& x) {
  double lse = 0;
  for (double v : x) lse += std::exp(v);
  lse = std::log(lse);
  std::vector<double> out;
  for (double v : x) out.push_back(v - lse);
  return out;
}

TEST(Steering, HardFormSetsPromotedToMaxPlusDeltaAndDemotedToMinMinusDelta) {
  const Steering s =
      parse(R"({"layers": [1, 1], "delta": 0.01, "promote_all": [0], "demote_all": [4]})");
  const RouterIntervention steer = steering_intervention(s);
  const Tensor x = hand_logits();
  NoGradGuard no_grad;
  const Variable out = steer(1, Variable(x));

  const std::vector<double> flat = x.to_vector<double>();
  std::vector<double> expected;
  for (int r = 0; r < 3; ++r) {
    std::vector<double> row = log_softmax_row({flat.begin() + 5 * r, flat.begin() + 5 * r + 5});
    const double hi = *std::max_element(row.begin(), row.end()) + 0.01;
    const double lo = *std::min_element(row.begin(), row.end()) - 0.01;
    row[0] = hi;
    row[4] = lo;
    expected.insert(expected.end(), row.begin(), row.end());
  }
  EXPECT_ALL_CLOSE(out.data(), from_vector(expected, {3, 5}), 1e-12, 1e-12);

  // The router sees the steered scores: expert 0 first in every row, its probability from them.
  const Routing r = route(out, 2, false);
  const std::vector<int64_t> idx = r.indices.to_vector<int64_t>();
  EXPECT_EQ(idx, (std::vector<int64_t>{0, 3, 0, 1, 0, 1}));
  const double z = std::exp(expected[0]) + std::exp(expected[1]) + std::exp(expected[2]) +
                   std::exp(expected[3]) + std::exp(expected[4]);
  EXPECT_NEAR(r.probs.to_vector<double>()[0], std::exp(expected[0]) / z, 1e-12);
  // Other layers pass through untouched.
  EXPECT_TRUE(steer(0, Variable(x)).data().shares_storage(x));
  EXPECT_TRUE(steer(2, Variable(x)).data().shares_storage(x));
}

TEST(Steering, SoftFormAddsLambdaTimesWeight) {
  const Steering s = parse(R"({"mode": "soft", "lambda": 2, "layers": [1, 1], "promote_all": [2],
      "demote_all": [0], "weights": {"1": {"2": 0.5}}})");
  const RouterIntervention steer = steering_intervention(s);
  const Tensor x = hand_logits();
  NoGradGuard no_grad;
  const Variable out = steer(1, Variable(x));
  const std::vector<double> shift = {-2.0, 0, 1.0, 0, 0};  // demoted w = 1 by default
  const std::vector<double> flat = x.to_vector<double>();
  std::vector<double> expected;
  for (int r = 0; r < 3; ++r) {
    const std::vector<double> row =
        log_softmax_row({flat.begin() + 5 * r, flat.begin() + 5 * r + 5});
    for (int e = 0; e < 5; ++e) expected.push_back(row[size_t(e)] + shift[size_t(e)]);
  }
  EXPECT_ALL_CLOSE(out.data(), from_vector(expected, {3, 5}), 1e-12, 1e-12);
  // The uniform row now routes to 2 first; the rest tie and the lowest goes next.
  const Routing r = route(out, 2, false);
  const std::vector<int64_t> idx = r.indices.to_vector<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(idx.begin() + 4, idx.end()), (std::vector<int64_t>{2, 1}));
  EXPECT_TRUE(steer(0, Variable(x)).data().shares_storage(x));
}

TEST(Steering, InterventionChecksExpertsAndRefusesToCutARecordedGradient) {
  const RouterIntervention steer =
      steering_intervention(parse(R"({"layers": [0, 1], "promote_all": [5]})"));
  {
    NoGradGuard no_grad;
    testing::expect_error([&] { steer(0, Variable(hand_logits())); },
                          "steering: expert 5 of layer 0 out of range for 5 experts");
  }
  Variable logits(from_vector<double>(std::vector<double>(6, 0.0), {1, 6}), true);
  testing::expect_error([&] { steer(0, logits); }, "router steering is for inference");
}

TEST(Steering, PromotingAnExpertInEveryLayerPutsItInEveryTokensTopK) {
  const OlmoeConfig c = testing::tiny_olmoe_config(30, 6, 2, 8);
  Generator gen(5);
  const auto owned = testing::tiny_olmoe(c, gen);
  OlmoeForCausalLM& model = *owned;
  const Tensor ids =
      from_vector<int32_t>({3, 7, 7, 29, 1, 0, 12, 5, 8, 8, 2, 19, 4, 4, 25, 6}, {2, 8});
  // Counts, per layer, the tokens whose top-k holds expert 3.
  std::vector<int64_t> with_expert(2, 0);
  RouterHooks hooks;
  hooks.capture = [&](const RouterRecord& r) {
    const std::vector<int64_t> idx = r.topk_indices.to_vector<int64_t>();
    for (size_t t = 0; t < idx.size() / 2; ++t)
      with_expert[size_t(r.layer)] += (idx[2 * t] == 3 || idx[2 * t + 1] == 3);
  };
  NoGradGuard no_grad;
  model.set_router_hooks(hooks);
  model.forward(ids);
  const std::vector<int64_t> unsteered = with_expert;
  EXPECT_LT(unsteered[0], 16) << "the test needs tokens that avoid expert 3";
  EXPECT_LT(unsteered[1], 16) << "the test needs tokens that avoid expert 3";

  with_expert = {0, 0};
  hooks.intervene = steering_intervention(parse(R"({"layers": [0, 1], "promote_all": [3]})"));
  model.set_router_hooks(hooks);
  model.forward(ids);
  EXPECT_EQ(with_expert, (std::vector<int64_t>{16, 16}));

  // Only layer 1 steered: layer 0 routes as before.
  with_expert = {0, 0};
  hooks.intervene = steering_intervention(parse(R"({"layers": [1, 1], "promote_all": [3]})"));
  model.set_router_hooks(hooks);
  model.forward(ids);
  EXPECT_EQ(with_expert, (std::vector<int64_t>{unsteered[0], 16}));
}

TEST(Steering, MiddleLayersAreTheMiddleThird) {
  EXPECT_EQ(middle_layers(16), (std::vector<int64_t>{5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(middle_layers(4), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(middle_layers(3), (std::vector<int64_t>{1}));
  EXPECT_EQ(middle_layers(1), (std::vector<int64_t>{0}));
}

// 3 layers, 4 experts, top-2: frequencies are usage * 2, the mean expert's 0.5.
json hand_analysis() {
  return json::parse(R"({"languages": ["en", "xx"], "layers": 3, "experts": 4, "top_k": 2,
    "english": "en", "per_layer": [
      {"layer": 0, "usage": {"en": [0.25, 0.25, 0.25, 0.25], "xx": [0.25, 0.25, 0.25, 0.25]}},
      {"layer": 1, "usage": {"en": [0.45, 0.3, 0.15, 0.1], "xx": [0.1, 0.3, 0.15, 0.45]}},
      {"layer": 2, "usage": {"en": [0.1, 0.2, 0.3, 0.4], "xx": [0.4, 0.3, 0.2, 0.1]}}]})");
}

std::vector<int64_t> experts_of(const std::vector<PreferredExpert>& p) {
  std::vector<int64_t> out;
  for (const PreferredExpert& e : p) out.push_back(e.expert);
  return out;
}

TEST(Steering, TauThresholdIdentifiesLanguageSpecialisedAndTaskExperts) {
  const json doc = hand_analysis();
  const JsonReader a(doc, "routing.json");
  // xx - en in frequency: layer 1 [-0.7, 0, 0, 0.7], layer 2 [0.6, 0.2, -0.2, -0.6].
  const auto specialised = language_specialised_experts(a, "xx", {});
  ASSERT_EQ(specialised.size(), 3u);
  EXPECT_TRUE(specialised[0].empty());
  EXPECT_EQ(experts_of(specialised[1]), (std::vector<int64_t>{3}));
  EXPECT_NEAR(specialised[1][0].difference, 0.7, 1e-12);
  EXPECT_EQ(experts_of(specialised[2]), (std::vector<int64_t>{0}));
  // tau 0.1 takes expert 1 of layer 2 too, largest difference first.
  EXPECT_EQ(experts_of(language_specialised_experts(a, "xx", {0.1, 0})[2]),
            (std::vector<int64_t>{0, 1}));
  // The std rule: layer 2's differences have mean 0 and std sqrt(0.2) = 0.447; one std keeps 0.6.
  const auto by_std = language_specialised_experts(a, "xx", {0.3, 1.0});
  EXPECT_TRUE(by_std[0].empty());  // no spread, nothing stands out
  EXPECT_EQ(experts_of(by_std[2]), (std::vector<int64_t>{0}));
  EXPECT_TRUE(language_specialised_experts(a, "xx", {0.3, 3.0})[2].empty());

  // English against the mean expert (0.5): layer 1 [0.9, 0.6, 0.3, 0.2] - 0.5.
  const auto task = task_experts(a, "en", {});
  EXPECT_EQ(experts_of(task[1]), (std::vector<int64_t>{0}));
  EXPECT_NEAR(task[1][0].difference, 0.4, 1e-12);
  EXPECT_TRUE(task[0].empty());
  EXPECT_EQ(experts_of(task_experts(a, "en", {0.05, 0})[1]), (std::vector<int64_t>{0, 1}));

  testing::expect_error([&] { task_experts(a, "fi", {}); },
                        "routing.json: field 'per_layer[0].usage' has no language 'fi' (it has: "
                        "en, xx)");
  testing::expect_error([&] { task_experts(a, "en", {-1, 0}); }, "must be non-negative");
  const json empty = json::object();
  testing::expect_error([&] { task_experts(JsonReader(empty, "r.json"), "en", {}); },
                        "r.json: field 'top_k' is missing");
  auto refused = [&](const std::string& pointer, const json& value, const std::string& message) {
    json edited = doc;
    edited[json::json_pointer(pointer)] = value;
    testing::expect_error(
        [&] { language_specialised_experts(JsonReader(edited, "routing.json"), "xx", {}); },
        "routing.json: field '" + message);
  };
  refused("/experts", 0, "experts' must be an integer >= 1, got 0");
  refused("/english", nullptr, "english' must be a string, got null");
  refused("/per_layer/1/usage/xx", json::array({0.1, 0.2}),
          "per_layer[1].usage.xx' has 2 experts, not 4");
  refused("/per_layer/2/usage/en/3", "0.4", "per_layer[2].usage.en[3]' must be a finite number");
}

TEST(Steering, FromAnalysisPromotesPreferredExpertsInTheMiddleLayers) {
  const json doc = hand_analysis();
  const JsonReader a(doc, "routing.json");
  SteeringFromAnalysisOptions o;  // English against the mean expert, middle third: layer 1
  Steering s = steering_from_analysis(a, o);
  ASSERT_EQ(s.layers.size(), 1u);
  EXPECT_EQ(promoted(s, 1), (std::vector<int64_t>{0}));
  EXPECT_TRUE(s.layers.at(1).weights.empty());
  EXPECT_EQ(s.provenance["language"], "en");
  EXPECT_EQ(s.provenance["reference"], "mean expert");

  o.reference = "xx";  // English against xx: layer 1 +0.7 for expert 0, layer 2 +0.6 for expert 3
  o.layers = LayerRange{1, 2};
  o.mode = SteeringMode::Soft;
  o.threshold.tau = 0.5;
  s = steering_from_analysis(a, o);
  EXPECT_EQ(promoted(s, 1), (std::vector<int64_t>{0}));
  EXPECT_EQ(promoted(s, 2), (std::vector<int64_t>{3}));
  EXPECT_NEAR(s.layers.at(2).weights.at(3), 0.6, 1e-12);

  // What it writes is a valid steering file for a model of the analysis's size.
  const Steering back = parse(s.to_json().dump(), {3, 4});
  EXPECT_EQ(back.mode, SteeringMode::Soft);
  EXPECT_EQ(promoted(back, 2), (std::vector<int64_t>{3}));
  EXPECT_EQ(back.provenance["threshold"]["tau"], 0.5);

  o.layers = LayerRange{3, 3};
  testing::expect_error([&] { steering_from_analysis(a, o); },
                        "layers 3-3 out of range for an analysis of 3 layers");
  o.layers = LayerRange{0, 99999999999};  // refused before it is spelled out layer by layer
  testing::expect_error([&] { steering_from_analysis(a, o); },
                        "layers 0-99999999999 out of range for an analysis of 3 layers");
  o.layers.reset();
  json short_doc = doc;
  short_doc["per_layer"].erase(2);
  testing::expect_error([&] { steering_from_analysis(JsonReader(short_doc, "routing.json"), o); },
                        "routing.json: field 'per_layer' has 2 layers, not 3");
}

TEST(Steering, LayerRangesAreReadStrictly) {
  const LayerRange r = parse_layer_range("5-10");
  EXPECT_EQ(r.first, 5);
  EXPECT_EQ(r.last, 10);
  EXPECT_EQ(parse_layer_range("7").first, 7);
  EXPECT_EQ(parse_layer_range("7").last, 7);
  // stoll, which stops at the first non-digit, once read 3x, 1-2x and 0.5-2 as ranges.
  for (const char* bad : {"", "x", "3x", "1-2x", "0.5-2", "-1", "1-", "+1-2", "1-2-3", " 1-2",
                          "99999999999999999999"})
    testing::expect_error([&] { parse_layer_range(bad); },
                          "must be FIRST-LAST (e.g. 5-10) or one layer, got '" + std::string(bad) +
                              "'");
  testing::expect_error([&] { parse_layer_range("5-2"); }, "'5-2': the first layer is after the last");
}

}  // namespace
}  // namespace moegrad::eval
