// Selective adaptation's choice of experts from a routing analysis, method by method.
#include "train/adapt.h"

#include "tests/testing.h"

namespace moegrad::train {
namespace {

using json = nlohmann::json;

// 4 layers of 8 experts; the last two have ru- and en-specific experts, shared ones and gaps.
json analysis() {
  json a = {{"languages", {"de", "en", "ru"}}, {"layers", 4}, {"experts", 8}, {"per_layer", json::array()}};
  for (int l = 0; l < 4; ++l)
    a["per_layer"].push_back(
        {{"layer", l},
         {"language_specific", {{"ru", {5, 1}}, {"en", {0}}, {"de", {2}}}},
         {"shared", {3, 0, 4, 6}},
         {"gaps", {{{"expert", 5}, {"language", "ru"}, {"gap", 0.05}},
                   {{"expert", 7}, {"language", "ru"}, {"gap", 0.20}},
                   {{"expert", 1}, {"language", "ru"}, {"gap", 0.10}},
                   {{"expert", 0}, {"language", "en"}, {"gap", 0.30}}}}});
  return a;
}

AdaptSection method(const std::string& m, const std::string& language = "ru") {
  AdaptSection a;
  a.method = m;
  a.language = language;
  a.routing = "routing.json";
  return a;
}

TEST(Adapt, SeftTrainsTheLanguagesExpertsAndRoutersOfTheLastLayers) {
  const Adaptation a = resolve_adaptation(method("seft"), 4, 8, analysis());
  EXPECT_EQ(a.source_language, "ru");
  EXPECT_EQ(a.experts, (std::map<int64_t, std::vector<int64_t>>{{2, {1, 5}}, {3, {1, 5}}}));
  EXPECT_EQ(a.rules, (std::vector<std::string>{"train model.layers.2.mlp.gate.weight", "experts 2:1,5",
                                               "train model.layers.3.mlp.gate.weight", "experts 3:1,5"}));
}

TEST(Adapt, AChildWithoutExpertsBorrowsItsParents) {
  const Adaptation a = resolve_adaptation(method("seft", "uk"), 4, 8, analysis());  // uk -> ru
  EXPECT_EQ(a.source_language, "ru");
  EXPECT_EQ(a.experts.at(3), (std::vector<int64_t>{1, 5}));
  AdaptSection own = method("seft", "uk");
  own.parents = "uk:de";
  EXPECT_EQ(resolve_adaptation(own, 4, 8, analysis()).experts.at(3), (std::vector<int64_t>{2}));
  testing::expect_error([] { resolve_adaptation(method("seft", "xx"), 4, 8, analysis()); },
                        "adapt.language: 'xx' has no language-specific experts");
}

TEST(Adapt, SsftAddsSharedExpertsSkippingTheChosenOnes) {
  AdaptSection s = method("ssft");
  s.shared_k = 2;
  EXPECT_EQ(resolve_adaptation(s, 4, 8, analysis()).experts.at(2), (std::vector<int64_t>{0, 1, 3, 5}));
}

TEST(Adapt, BaselinesAeftTopNRandomFinalLayersAndFull) {
  AdaptSection aeft = method("aeft");
  aeft.layers = 1;
  EXPECT_EQ(resolve_adaptation(aeft, 4, 8, json::object()).experts,
            (std::map<int64_t, std::vector<int64_t>>{{3, {0, 1, 2, 3, 4, 5, 6, 7}}}));
  AdaptSection top = method("top_n");
  top.top_n = 2;
  EXPECT_EQ(resolve_adaptation(top, 4, 8, analysis()).experts.at(3), (std::vector<int64_t>{1, 7}));
  const Adaptation r1 = resolve_adaptation(method("random"), 4, 8, analysis());
  EXPECT_NE(r1.source_language, "ru");
  EXPECT_EQ(resolve_adaptation(method("random"), 4, 8, analysis()).source_language,
            r1.source_language);  // seeded
  EXPECT_EQ(resolve_adaptation(method("final_layers"), 4, 8, json::object()).rules,
            (std::vector<std::string>{"train model.layers.2.*", "train model.layers.3.*"}));
  EXPECT_EQ(resolve_adaptation(method("full"), 4, 8, json::object()).rules,
            (std::vector<std::string>{"train *"}));
}

TEST(Adapt, ErrorsNameTheKey) {
  testing::expect_error([] { resolve_adaptation(method("sft"), 4, 8, analysis()); },
                        "adapt.method: 'sft' is not one of");
  AdaptSection deep = method("seft");
  deep.layers = 5;
  testing::expect_error([&] { resolve_adaptation(deep, 4, 8, analysis()); },
                        "adapt.layers: 5 is not between 1 and the model's 4 layers");
  testing::expect_error([] { resolve_adaptation(method("seft"), 4, 16, analysis()); },
                        "adapt.routing: routing.json: field 'experts' is 8, but the model has 16 "
                        "experts per layer");
}

TEST(Adapt, AnAnalysisOfAnotherShapeIsRefusedNamingTheField) {
  auto refused = [](const std::string& m, const std::string& pointer, const json& value,
                    const std::string& message) {
    json a = analysis();
    a[json::json_pointer(pointer)] = value;
    testing::expect_error([&] { resolve_adaptation(method(m), 4, 8, a); },
                          "adapt.routing: routing.json: field '" + message);
  };
  refused("seft", "/per_layer/3/language_specific", json::array(),
          "per_layer[3].language_specific' must be an object, got []");
  refused("seft", "/per_layer/3/language_specific/ru", "5,1",
          "per_layer[3].language_specific.ru' must be an array, got \"5,1\"");
  refused("seft", "/per_layer/3/layer", 2.5, "per_layer[3].layer' must be an integer, got 2.5");
  refused("seft", "/per_layer", json::array(), "per_layer' has no entry for layer 2");
  refused("seft", "/experts", "8", "experts' must be an integer, got \"8\"");
  refused("ssft", "/per_layer/3/shared/1", 0.5, "per_layer[3].shared[1]' must be an integer");
  refused("top_n", "/per_layer/3/gaps/1/gap", "big",
          "per_layer[3].gaps[1].gap' must be a finite number, got \"big\"");
  refused("top_n", "/per_layer/2/gaps", json::object(), "per_layer[2].gaps' must be an array");
  refused("random", "/languages", json::array({"ru"}),
          "languages' holds no language other than ru");
  refused("random", "/languages/0", 7, "languages[0]' must be a string, got 7");
  json no_layers = analysis();
  no_layers.erase("per_layer");
  testing::expect_error([&] { resolve_adaptation(method("seft"), 4, 8, no_layers); },
                        "adapt.routing: routing.json: field 'per_layer' is missing");
}

}  // namespace
}  // namespace moegrad::train
