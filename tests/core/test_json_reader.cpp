#include "core/io/json_reader.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::error_of;

const nlohmann::json kDoc = nlohmann::json::parse(R"({
  "count": 3, "big": 18446744073709551615, "negative": -2, "ratio": 0.5, "whole_float": 2.0,
  "name": "de", "flag": true, "list": [1, 2, 3], "words": ["a", "b"], "rates": [0.5, 1],
  "files": {"model.safetensors": {"bytes": 10}},
  "nested": {"items": [{"x": 1}, {"x": "one"}]}
})");

TEST(JsonReader, ReadsEachTypeItIsAskedFor) {
  const JsonReader r(kDoc, "doc.json");
  EXPECT_EQ(r["count"].integer(), 3);
  EXPECT_EQ(r["count"].integer(0, 3), 3);
  EXPECT_EQ(r["negative"].integer(), -2);
  EXPECT_EQ(r["count"].unsigned_integer(), 3u);
  EXPECT_EQ(r["big"].unsigned_integer(), 18446744073709551615ull);
  EXPECT_EQ(r["ratio"].number(), 0.5);
  EXPECT_EQ(r["count"].number(), 3.0);
  EXPECT_TRUE(r["flag"].boolean());
  EXPECT_EQ(r["name"].string(), "de");
  EXPECT_EQ(r["list"].integers(), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(r["words"].strings(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r["rates"].numbers(), (std::vector<double>{0.5, 1.0}));
  EXPECT_EQ(r["files"]["model.safetensors"]["bytes"].integer(), 10);
  EXPECT_TRUE(r.has("count"));
  EXPECT_FALSE(r.has("absent"));
  EXPECT_FALSE(r["count"].has("count"));  // not an object: has nothing
  EXPECT_EQ(r["nested"]["items"].elements()[1]["x"].json(), "one");
  EXPECT_EQ(json_int64(kDoc["negative"]), -2);
  EXPECT_FALSE(json_int64(kDoc["big"]).has_value());
  EXPECT_FALSE(json_int64(kDoc["whole_float"]).has_value());
}

TEST(JsonReader, NamesTheFileTheFieldAndWhatWasExpected) {
  const JsonReader r(kDoc, "doc.json");
  EXPECT_EQ(error_of([&] { r["absent"]; }), "doc.json: field 'absent' is missing");
  EXPECT_EQ(error_of([&] { r["name"].integer(); }),
            "doc.json: field 'name' must be an integer, got \"de\"");
  EXPECT_EQ(error_of([&] { r["nested"]["items"].elements()[1]["x"].integer(); }),
            "doc.json: field 'nested.items[1].x' must be an integer, got \"one\"");
  EXPECT_EQ(error_of([&] { r["files"]["model.safetensors"]["checksum"]; }),
            "doc.json: field 'files[\"model.safetensors\"].checksum' is missing");
  EXPECT_EQ(error_of([&] { r["count"]["x"]; }), "doc.json: field 'count' must be an object, got 3");
  EXPECT_EQ(error_of([&] { r["count"].elements(); }),
            "doc.json: field 'count' must be an array, got 3");
  EXPECT_EQ(error_of([&] { r["words"].integers(); }),
            "doc.json: field 'words[0]' must be an integer, got \"a\"");
  EXPECT_EQ(error_of([&] { r["flag"].string(); }),
            "doc.json: field 'flag' must be a string, got true");
  EXPECT_EQ(error_of([&] { r["count"].boolean(); }),
            "doc.json: field 'count' must be true or false, got 3");
  EXPECT_EQ(error_of([&] { r["name"].number(); }),
            "doc.json: field 'name' must be a finite number, got \"de\"");
  EXPECT_EQ(error_of([&] { r["list"]["x"]; }),
            "doc.json: field 'list' must be an object, got [1,2,3]");
  // The document itself, and a long value cut short.
  const nlohmann::json array = nlohmann::json::array({std::string(200, 'x')});
  EXPECT_EQ(error_of([&] { JsonReader(array, "a.json")["k"]; }),
            "a.json must be an object, got [\"" + std::string(78, 'x') + "...");
  EXPECT_EQ(error_of([&] { r["nested"].fail("is not what was meant"); }),
            "doc.json: field 'nested' is not what was meant");
  EXPECT_EQ(r["nested"]["items"].where(), "doc.json: field 'nested.items'");
  EXPECT_EQ(r.where(), "doc.json");
}

TEST(JsonReader, NeverNarrowsANumber) {
  const JsonReader r(kDoc, "doc.json");
  EXPECT_EQ(error_of([&] { r["ratio"].integer(); }),
            "doc.json: field 'ratio' must be an integer, got 0.5");
  // 2.0 is written as a float: an integer field must be written as one.
  EXPECT_EQ(error_of([&] { r["whole_float"].integer(); }),
            "doc.json: field 'whole_float' must be an integer, got 2.0");
  // Above int64's range nlohmann keeps it unsigned; reading it as int64 would wrap.
  EXPECT_EQ(error_of([&] { r["big"].integer(); }),
            "doc.json: field 'big' must be an integer, got 18446744073709551615");
  EXPECT_EQ(error_of([&] { r["negative"].unsigned_integer(); }),
            "doc.json: field 'negative' must be an integer >= 0, got -2");
  EXPECT_EQ(error_of([&] { r["count"].integer(0, 2); }),
            "doc.json: field 'count' must be an integer from 0 to 2, got 3");
  EXPECT_EQ(error_of([&] { r["negative"].integer(0); }),
            "doc.json: field 'negative' must be an integer >= 0, got -2");
  EXPECT_EQ(error_of([&] { r["count"].integer(std::numeric_limits<int64_t>::min(), 1); }),
            "doc.json: field 'count' must be an integer <= 1, got 3");
  const nlohmann::json nan = {{"v", std::nan("")}};
  EXPECT_EQ(error_of([&] { JsonReader(nan, "n.json")["v"].number(); }),
            "n.json: field 'v' must be a finite number, got null");
}

}  // namespace
}  // namespace moegrad
