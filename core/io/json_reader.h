// Typed reads of JSON that a user can edit or mix up: checkpoint states, routing analyses,
// freeze masks, HF config.json. A missing field or a value of another type throws moegrad::Error
// naming the file, the field's path and what was expected, e.g.
//   run/checkpoints/step-00000003/trainer_state.json: field 'loader.streams[0].offset' must be
//   an integer, got "x"
// where nlohmann's own exceptions ("type must be number, but is string") name neither; and a
// number is never narrowed silently (1.5 or 1e30 is not an integer).
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace moegrad {

// `v` as an int64 when it is an integer within int64's range, else nothing: nlohmann keeps
// integers above that range as unsigned, and get<int64_t>() would wrap them.
std::optional<int64_t> json_int64(const nlohmann::json& v);

// A value inside a JSON document, with the document's name and the path to the value. It refers
// to the document: the document must outlive it.
class JsonReader {
 public:
  JsonReader(const nlohmann::json& document, std::string source);

  const nlohmann::json& json() const { return *value_; }
  // "loader.streams[0].offset"; empty for the document itself.
  const std::string& path() const { return path_; }

  bool has(std::string_view key) const;  // an object with this key
  // The field `key` of an object; throws when this is not an object or the key is missing.
  JsonReader operator[](std::string_view key) const;
  // The elements of an array; throws when this is not one.
  std::vector<JsonReader> elements() const;

  // A whole number within [min, max].
  int64_t integer(int64_t min = std::numeric_limits<int64_t>::min(),
                  int64_t max = std::numeric_limits<int64_t>::max()) const;
  uint64_t unsigned_integer() const;
  double number() const;  // a finite number
  bool boolean() const;
  std::string string() const;
  std::vector<int64_t> integers() const;  // an array of integers
  std::vector<double> numbers() const;    // an array of finite numbers
  std::vector<std::string> strings() const;

  // "<source>: field '<path>'", or "<source>" for the document itself.
  std::string where() const;
  // Throws "<where()> <what>", e.g. fail("is not a freeze mask").
  [[noreturn]] void fail(const std::string& what) const;
  // fail("must be <expected>, got <the value>") unless `ok`.
  void expect(bool ok, const std::string& expected) const;

 private:
  JsonReader(const nlohmann::json& value, std::shared_ptr<const std::string> source,
             std::string path);

  const nlohmann::json* value_;
  std::shared_ptr<const std::string> source_;
  std::string path_;
};

}  // namespace moegrad
