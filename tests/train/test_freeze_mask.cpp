#include "tests/testing.h"
#include "train/freeze_mask.h"
#include "train/glob.h"

namespace moegrad::train {
namespace {

using testing::error_of;
using testing::expect_error;

constexpr int64_t kLayers = 4, kExperts = 4, kH = 3, kI = 2, kV = 10;

// An OLMoE-shaped parameter list with HF names: 4 layers of 4 experts, tiny shapes.
NamedParameters olmoe_params() {
  NamedParameters p;
  auto add = [&](const std::string& name, Shape shape) {
    p.emplace_back(name, Variable(zeros(shape, DType::F32), true));
  };
  add("model.embed_tokens.weight", {kV, kH});
  for (int64_t l = 0; l < kLayers; ++l) {
    const std::string layer = "model.layers." + std::to_string(l) + ".";
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
      add(layer + "self_attn." + proj + ".weight", {kH, kH});
    add(layer + "input_layernorm.weight", {kH});
    add(layer + "post_attention_layernorm.weight", {kH});
    add(layer + "mlp.gate.weight", {kExperts, kH});
    for (int64_t e = 0; e < kExperts; ++e) {
      const std::string expert = layer + "mlp.experts." + std::to_string(e) + ".";
      add(expert + "gate_proj.weight", {kI, kH});
      add(expert + "up_proj.weight", {kI, kH});
      add(expert + "down_proj.weight", {kH, kI});
    }
  }
  add("model.norm.weight", {kH});
  add("lm_head.weight", {kV, kH});
  return p;
}

FreezeMask mask_of(const std::vector<std::string>& rules, const NamedParameters& params) {
  return FreezeMask::build(parse_freeze_rules(rules), params);
}

// Names of the parameters that train, in parameter order.
std::vector<std::string> trained(const FreezeMask& mask) {
  std::vector<std::string> out;
  for (const auto& [name, m] : mask.entries())
    if (m.trains()) out.push_back(name);
  return out;
}

int64_t total_params() {
  int64_t per_layer = 4 * kH * kH + 2 * kH + kExperts * kH + kExperts * 3 * kI * kH;
  return 2 * kV * kH + kLayers * per_layer + kH;
}

TEST(Glob, MatchesStarsAndQuestionMarks) {
  EXPECT_TRUE(glob_match("model.layers.*.mlp.gate.weight", "model.layers.12.mlp.gate.weight"));
  EXPECT_TRUE(glob_match("*", "a.b.c"));
  EXPECT_TRUE(glob_match("*norm.weight", "model.layers.0.input_layernorm.weight"));
  EXPECT_TRUE(glob_match("a.?.c", "a.b.c"));
  EXPECT_FALSE(glob_match("a.?.c", "a.bb.c"));
  EXPECT_FALSE(glob_match("model.layers.1.*", "model.layers.12.mlp.gate.weight"));
  EXPECT_TRUE(glob_match("*a*b*", "xxaxxbxx"));
  EXPECT_FALSE(glob_match("*a*b", "xxaxxbxx"));
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
}

TEST(Glob, ExpandsBracesInOrder) {
  using V = std::vector<std::string>;
  EXPECT_EQ(expand_braces("a{1,2}b{x,y}", "t"), (V{"a1bx", "a1by", "a2bx", "a2by"}));
  EXPECT_EQ(expand_braces("l.{14..16}", "t"), (V{"l.14", "l.15", "l.16"}));
  EXPECT_EQ(expand_braces("l.{2..0}", "t"), (V{"l.2", "l.1", "l.0"}));
  EXPECT_EQ(expand_braces("{a,{1..2}}", "t"), (V{"a", "1", "2"}));
  EXPECT_EQ(expand_braces("plain", "t"), (V{"plain"}));
  expect_error([] { expand_braces("a{1,2", "ctx"); }, "ctx: unbalanced '{' in 'a{1,2'");
  expect_error([] { expand_braces("a}{", "ctx"); }, "ctx: unbalanced '}' in 'a}{'");
  expect_error([] { expand_braces("a{}", "ctx"); }, "ctx: empty braces in '{}'");
  expect_error([] { expand_braces("{1..x}", "ctx"); }, "ctx: bad range '{1..x}'");
  expect_error([] { expand_braces("{0..999999}", "ctx"); }, "more than 100000");
}

TEST(Glob, ClosestNamesTreatWildcardsAsFree) {
  const std::vector<std::string> names{"model.norm.weight", "model.layers.0.mlp.gate.weight",
                                       "model.layers.1.mlp.gate.weight"};
  EXPECT_EQ(closest_names("model.layers.*.mlp.gates.weight", names, 1),
            std::vector<std::string>{"model.layers.0.mlp.gate.weight"});
  EXPECT_EQ(closest_names("model.norms.weight", names, 1),
            std::vector<std::string>{"model.norm.weight"});
}

TEST(FreezeMask, NoRulesTrainsEverything) {
  const NamedParameters params = olmoe_params();
  const FreezeMask mask = mask_of({}, params);
  const TrainableCount c = mask.count(params);
  EXPECT_EQ(c.total, total_params());
  EXPECT_EQ(c.trainable, c.total);
  EXPECT_DOUBLE_EQ(c.percent(), 100.0);
}

TEST(FreezeMask, TrainFirstStartsFrozenFreezeFirstStartsTrained) {
  const NamedParameters params = olmoe_params();
  EXPECT_EQ(trained(mask_of({"train model.layers.*.mlp.gate.weight"}, params)),
            (std::vector<std::string>{
                "model.layers.0.mlp.gate.weight", "model.layers.1.mlp.gate.weight",
                "model.layers.2.mlp.gate.weight", "model.layers.3.mlp.gate.weight"}));
  const FreezeMask mask = mask_of({"freeze model.layers.*.self_attn.*"}, params);
  EXPECT_EQ(mask.count(params).trainable, total_params() - kLayers * 4 * kH * kH);
  EXPECT_FALSE(mask.at("model.layers.2.self_attn.k_proj.weight").trains());
  EXPECT_TRUE(mask.at("model.layers.2.mlp.gate.weight").trains());
}

TEST(FreezeMask, BracesRangesAndWildcards) {
  const NamedParameters params = olmoe_params();
  EXPECT_EQ(
      trained(mask_of({"train model.layers.{1..2}.self_attn.{q,k}_proj.weight"}, params)),
      (std::vector<std::string>{
          "model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
          "model.layers.2.self_attn.q_proj.weight", "model.layers.2.self_attn.k_proj.weight"}));
  EXPECT_EQ(trained(mask_of({"train model.layers.{0,{2..3}}.mlp.gate.weight"}, params)).size(), 3u);
  // `*` crosses dots.
  EXPECT_EQ(trained(mask_of({"train *norm.weight"}, params)).size(), size_t(2 * kLayers + 1));
  EXPECT_EQ(trained(mask_of({"train model.layers.?.mlp.experts.?.up_proj.weight"}, params)).size(),
            size_t(kLayers * kExperts));
}

TEST(FreezeMask, LaterRulesOverrideEarlierOnes) {
  const NamedParameters params = olmoe_params();
  const FreezeMask mask = mask_of(
      {"train model.layers.*; freeze model.layers.3.*\ntrain model.layers.3.mlp.gate.weight"},
      params);
  EXPECT_TRUE(mask.at("model.layers.2.self_attn.q_proj.weight").trains());
  EXPECT_FALSE(mask.at("model.layers.3.self_attn.q_proj.weight").trains());
  EXPECT_TRUE(mask.at("model.layers.3.mlp.gate.weight").trains());
  EXPECT_FALSE(mask.at("model.embed_tokens.weight").trains());
}

TEST(FreezeMask, ExpertsRuleWithRangesListsAndNegativeLayers) {
  const NamedParameters params = olmoe_params();
  const FreezeMask mask = mask_of({"experts 1-2:0,3"}, params);
  EXPECT_EQ(trained(mask).size(), 2u * 2u * 3u);
  EXPECT_TRUE(mask.at("model.layers.2.mlp.experts.3.down_proj.weight").trains());
  EXPECT_FALSE(mask.at("model.layers.2.mlp.experts.1.down_proj.weight").trains());
  EXPECT_FALSE(mask.at("model.layers.2.mlp.gate.weight").trains());

  const FreezeMask last = mask_of({"experts -1:all",
                                   "train model.layers.3.mlp.gate.weight"
                                   ";freeze model.layers.3.mlp.experts.2.*"},
                                  params);
  EXPECT_EQ(trained(last).size(), size_t(3 * (kExperts - 1) + 1));
  EXPECT_EQ(trained(mask_of({"experts -4, -3 : 1"}, params)),
            (std::vector<std::string>{"model.layers.0.mlp.experts.1.gate_proj.weight",
                                      "model.layers.0.mlp.experts.1.up_proj.weight",
                                      "model.layers.0.mlp.experts.1.down_proj.weight",
                                      "model.layers.1.mlp.experts.1.gate_proj.weight",
                                      "model.layers.1.mlp.experts.1.up_proj.weight",
                                      "model.layers.1.mlp.experts.1.down_proj.weight"}));
  EXPECT_EQ(trained(mask_of({"experts -2--1:0"}, params)).size(), 6u);
}

TEST(FreezeMask, RowsRule) {
  const NamedParameters params = olmoe_params();
  const FreezeMask mask = mask_of({"rows model.embed_tokens.weight:7-9,2"}, params);
  const ParamMask& m = mask.at("model.embed_tokens.weight");
  EXPECT_EQ(m.mode, ParamMask::Mode::Rows);
  EXPECT_EQ(m.rows, (std::vector<int64_t>{2, 7, 8, 9}));
  EXPECT_EQ(mask.count(params).trainable, 4 * kH);
  EXPECT_EQ(trained(mask).size(), 1u);

  // A second rows rule adds rows; a train rule in between resets.
  EXPECT_EQ(
      mask_of({"rows model.embed_tokens.weight:1", "rows model.embed_tokens.weight:0-1,5"}, params)
          .at("model.embed_tokens.weight")
          .rows,
      (std::vector<int64_t>{0, 1, 5}));
  // rows after train restricts the parameter to those rows.
  const FreezeMask shrunk =
      mask_of({"train *", "rows {model.embed_tokens,lm_head}.weight:3"}, params);
  EXPECT_EQ(shrunk.at("lm_head.weight").rows, std::vector<int64_t>{3});
  EXPECT_EQ(shrunk.count(params).trainable, total_params() - 2 * (kV - 1) * kH);
  // Every row: stored as whole. A 1-d parameter has rows too.
  EXPECT_EQ(mask_of({"rows lm_head.weight:0-9"}, params).at("lm_head.weight").mode,
            ParamMask::Mode::Whole);
  EXPECT_EQ(mask_of({"rows model.norm.weight:1"}, params).count(params).trainable, 1);
}

TEST(FreezeMask, ExactCountOfAMixedMask) {
  const NamedParameters params = olmoe_params();
  const FreezeMask mask = mask_of({"experts -2,-1:1,2; train model.layers.{2,3}.mlp.gate.weight; "
                                   "rows model.embed_tokens.weight:9"},
                                  params);
  const int64_t expected = 2 * 2 * 3 * kI * kH + 2 * kExperts * kH + kH;
  const TrainableCount c = mask.count(params);
  EXPECT_EQ(c.trainable, expected);
  EXPECT_EQ(c.total, total_params());
  EXPECT_DOUBLE_EQ(c.percent(), 100.0 * double(expected) / double(total_params()));
}

TEST(FreezeMask, ApplySetsRequiresGrad) {
  const NamedParameters params = olmoe_params();
  mask_of({"train model.norm.weight", "rows lm_head.weight:0"}, params).apply(params);
  for (const auto& [name, p] : params)
    EXPECT_EQ(p.requires_grad(), name == "model.norm.weight" || name == "lm_head.weight") << name;
}

TEST(FreezeMask, PatternsThatMatchNothingAreErrorsWithAHint) {
  const NamedParameters params = olmoe_params();
  expect_error([&] { mask_of({"train model.layers.9.mlp.gate.weight"}, params); },
               "freeze rule 'train model.layers.9.mlp.gate.weight': pattern "
               "'model.layers.9.mlp.gate.weight' matches no parameter; closest: "
               "model.layers.0.mlp.gate.weight, model.layers.1.mlp.gate.weight");
  // One alternative out of range is enough.
  expect_error([&] { mask_of({"freeze model.layers.{2..4}.mlp.gate.weight"}, params); },
               "(its expansion 'model.layers.4.mlp.gate.weight' matches none)");
  expect_error([&] { mask_of({"train model.norms.weight"}, params); },
               "closest: model.norm.weight");
  expect_error([&] { mask_of({"rows model.embed.weight:1"}, params); },
               "freeze rule 'rows model.embed.weight:1': pattern 'model.embed.weight' matches no "
               "parameter; closest: model.norm.weight");
}

TEST(FreezeMask, ResolutionErrorsNameTheRule) {
  const NamedParameters params = olmoe_params();
  expect_error(
      [&] { mask_of({"experts 0:9"}, params); },
      "freeze rule 'experts 0:9': no parameter model.layers.0.mlp.experts.9.gate_proj.weight "
      "(layer 0 has experts 0-3)");
  expect_error([&] { mask_of({"experts -5:1"}, params); },
               "freeze rule 'experts -5:1': layer -5 out of range for 4 layers");
  expect_error([&] { mask_of({"experts 4:all"}, params); },
               "freeze rule 'experts 4:all': layer 4 out of range for 4 layers");
  expect_error([&] { mask_of({"rows lm_head.weight:3,10"}, params); },
               "freeze rule 'rows lm_head.weight:3,10': row 10 out of range for lm_head.weight "
               "with 10 rows");
  NamedParameters flat;
  flat.emplace_back("w", Variable(zeros({2}), true));
  expect_error([&] { mask_of({"experts 0:1"}, flat); }, "the model has no model.layers.{i}");
  NamedParameters scalar;
  scalar.emplace_back("s", Variable(zeros({}), true));
  expect_error([&] { mask_of({"rows s:0"}, scalar); }, "s is a scalar and has no rows");
}

TEST(FreezeMask, SyntaxErrorsNameTheRule) {
  expect_error([] { parse_freeze_rule("trian model.*"); },
               "freeze rule 'trian model.*': unknown rule 'trian' (expected train, freeze, "
               "experts or rows)");
  expect_error([] { parse_freeze_rule("train"); }, "freeze rule 'train': missing PATTERN");
  expect_error([] { parse_freeze_rule("train a b"); },
               "freeze rule 'train a b': expected one pattern, got 'a b'");
  expect_error([] { parse_freeze_rule("freeze model.{a"); },
               "freeze rule 'freeze model.{a': unbalanced '{' in 'model.{a'");
  expect_error([] { parse_freeze_rule("experts 1-2"); },
               "freeze rule 'experts 1-2': expected LAYERS:EXPERTS");
  expect_error([] { parse_freeze_rule("experts x:1"); },
               "freeze rule 'experts x:1': bad layer 'x'");
  expect_error([] { parse_freeze_rule("experts 1:-1"); },
               "freeze rule 'experts 1:-1': bad expert '-1' (expected N or FIRST-LAST)");
  expect_error([] { parse_freeze_rule("experts 1:3,"); }, "empty or malformed expert list '3,'");
  expect_error([] { parse_freeze_rule("rows w:5-3"); },
               "freeze rule 'rows w:5-3': row range '5-3' is descending");
  expect_error([] { parse_freeze_rule("rows w"); }, "freeze rule 'rows w': expected PATTERN:ROWS");
  expect_error([] { parse_freeze_rules({"train a; rows :1"}); },
               "freeze rule 'rows :1': expected PATTERN:ROWS");
}

TEST(FreezeMask, ParsesRuleLists) {
  const std::vector<FreezeRule> rules =
      parse_freeze_rules({"  train a.* ;; freeze b\n", "experts 14-15:3,7,12", ""});
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0].kind, FreezeRule::Kind::Train);
  EXPECT_EQ(rules[0].pattern, "a.*");
  EXPECT_EQ(rules[1].text, "freeze b");
  EXPECT_EQ(rules[2].layers, (std::vector<int64_t>{14, 15}));
  EXPECT_EQ(rules[2].experts, (std::vector<int64_t>{3, 7, 12}));
  EXPECT_TRUE(parse_freeze_rule("experts 1:all").experts.empty());
}

TEST(FreezeMask, JsonRoundTripAndDifference) {
  const NamedParameters params = olmoe_params();
  const FreezeMask mask = mask_of({"experts -1:1,2", "train model.layers.3.mlp.gate.weight",
                                   "rows model.embed_tokens.weight:0-2,5,7-8"},
                                  params);
  const nlohmann::json j = nlohmann::json::parse(mask.to_json().dump());
  EXPECT_EQ(j["parameters"][0]["rows"], nlohmann::json::parse("[[0,2],[5,5],[7,8]]"));
  const FreezeMask back = FreezeMask::from_json(JsonReader(j, "mask.json"));
  EXPECT_TRUE(back == mask);
  EXPECT_EQ(back.difference(mask), "");
  EXPECT_EQ(back.count(params).trainable, mask.count(params).trainable);

  const FreezeMask other = mask_of({"experts -1:1"}, params);
  EXPECT_FALSE(other == mask);
  EXPECT_EQ(mask.difference(other), "model.embed_tokens.weight: rows 0-2,5,7-8 here, frozen there");
  NamedParameters fewer(params.begin(), params.end() - 1);
  EXPECT_EQ(mask_of({}, params).difference(mask_of({}, fewer)), "79 parameters here, 78 there");
}

TEST(FreezeMask, FromJsonRejectsMalformedInputNamingTheField) {
  auto from = [](const std::string& text) {
    return [text] {
      const nlohmann::json j = nlohmann::json::parse(text);
      FreezeMask::from_json(JsonReader(j, "state.json")["mask"]);
    };
  };
  expect_error(from(R"({"mask": {}})"), "state.json: field 'mask' is not a moegrad.freeze_mask");
  expect_error(from(R"({"mask": {"format": 3}})"), "field 'mask' is not a moegrad.freeze_mask");
  auto doc = [](const std::string& params) {
    return R"({"mask": {"format":"moegrad.freeze_mask","version":1,"parameters":)" + params +
           "}}";
  };
  expect_error(from(R"({"mask": {"format":"moegrad.freeze_mask","version":"1"}})"),
               "state.json: field 'mask.version' must be an integer, got \"1\"");
  expect_error(from(R"({"mask": {"format":"moegrad.freeze_mask","version":2}})"),
               "field 'mask.version' is 2, this build reads 1");
  expect_error(from(doc("{}")), "field 'mask.parameters' must be an array, got {}");
  expect_error(from(doc(R"([{"name":"a","mode":"half"}])")),
               "field 'mask.parameters[0].mode' must be frozen, whole or rows, got 'half'");
  expect_error(from(doc(R"([{"name":"a","mode":"rows","rows":[[3,1]]}])")),
               "field 'mask.parameters[0].rows[0]' is not a run [first, last] of a's rows");
  expect_error(from(doc(R"([{"name":"a","mode":"rows","rows":[[0,1.5]]}])")),
               "field 'mask.parameters[0].rows[0][1]' must be an integer, got 1.5");
  expect_error(from(doc(R"([{"name":"a","mode":"rows","rows":[]}])")),
               "field 'mask.parameters[0].rows' holds no rows of a");
  expect_error(from(doc(R"([{"name":"a"}])")), "field 'mask.parameters[0].mode' is missing");
  expect_error(from(doc(R"([{"name":7,"mode":"whole"}])")),
               "field 'mask.parameters[0].name' must be a string, got 7");
  expect_error(from(doc(R"([{"name":"a","mode":"whole"},{"name":"a","mode":"frozen"}])")),
               "freeze mask: parameter a appears twice");
}

TEST(FreezeMask, RefusesAnotherModel) {
  const NamedParameters params = olmoe_params();
  const FreezeMask mask = mask_of({"train lm_head.weight"}, params);
  NamedParameters renamed = params;
  renamed.back().first = "output.weight";
  expect_error([&] { mask.apply(renamed); },
               "freeze mask: the model's parameter output.weight is not in the mask");
  NamedParameters fewer(params.begin(), params.end() - 1);
  expect_error([&] { mask.count(fewer); },
               "freeze mask: the mask names lm_head.weight, which the model lacks");
  const FreezeMask rows = mask_of({"rows lm_head.weight:9"}, params);
  NamedParameters smaller = params;
  smaller.back().second = Variable(zeros({5, kH}), true);
  expect_error([&] { rows.apply(smaller); },
               "freeze mask: row 9 of lm_head.weight out of range for its shape [5, 3]");
}

TEST(FreezeMask, TrainedExpertsByLayer) {
  const NamedParameters params = olmoe_params();
  const FreezeMask mask =
      mask_of({"experts 2-3:2,1", "rows model.layers.1.mlp.experts.0.up_proj.weight:0",
               "train model.layers.0.mlp.gate.weight"},
              params);
  const std::map<int64_t, std::vector<int64_t>> expected{{1, {0}}, {2, {1, 2}}, {3, {1, 2}}};
  EXPECT_EQ(trained_experts_by_layer(mask), expected);
  EXPECT_TRUE(trained_experts_by_layer(mask_of({"train lm_head.weight"}, params)).empty());
}

TEST(FreezeMask, Summary) {
  const NamedParameters params = olmoe_params();
  const FreezeMask mask =
      mask_of({"rows model.embed_tokens.weight:7-9", "experts 2-3:1,2",
               "train model.layers.{2,3}.mlp.gate.weight", "train model.layers.0.*",
               "train model.layers.1.mlp.experts.0.gate_proj.weight"},
              params);
  const std::string s = mask.summary(params);
  const TrainableCount c = mask.count(params);
  EXPECT_EQ(
      s.substr(0, s.find('\n')), "trainable parameters: " + std::to_string(c.trainable) + " of " +
                                     std::to_string(c.total) + " (" +
                                     [&] {
                                       std::ostringstream os;
                                       os.precision(4);
                                       os << c.percent();
                                       return os.str();
                                     }() +
                                     "%)");
  EXPECT_NE(s.find("\n  model.embed_tokens.weight: rows 7-9 (3 of 10)\n"), std::string::npos) << s;
  EXPECT_NE(s.find("\n  layer 0: all\n"), std::string::npos) << s;
  EXPECT_NE(s.find("\n  layer 1: experts 0 (gate_proj.weight)\n"), std::string::npos) << s;
  EXPECT_NE(s.find("\n  layers 2-3: mlp.gate.weight; experts 1-2"), std::string::npos) << s;
  const std::string all = mask_of({}, params).summary(params);
  EXPECT_EQ(
      all.substr(all.find('\n')),
      "\n  model.embed_tokens.weight\n  layers 0-3: all\n  model.norm.weight\n  lm_head.weight");
  const std::string big = mask_of({}, NamedParameters{{"w", Variable(zeros({1000, 1234}))}})
                              .summary(NamedParameters{{"w", Variable(zeros({1000, 1234}))}});
  EXPECT_EQ(big.substr(0, big.find('\n')), "trainable parameters: 1,234,000 of 1,234,000 (100%)");
}

}  // namespace
}  // namespace moegrad::train
