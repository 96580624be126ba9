#include "core/io/json_reader.h"

#include <cctype>
#include <cmath>
#include <limits>
#include <utility>

#include "core/error.h"

namespace moegrad {
namespace {

// The offending value as it appears in the file, cut short: an object given for a number can
// be a whole section.
std::string shown(const nlohmann::json& v) {
  constexpr size_t kMax = 80;
  std::string s = v.dump();
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

bool plain_key(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

}  // namespace

std::optional<int64_t> json_int64(const nlohmann::json& v) {
  if (!v.is_number_integer()) return std::nullopt;
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    return std::nullopt;
  return v.get<int64_t>();
}

JsonReader::JsonReader(const nlohmann::json& document, std::string source)
    : JsonReader(document, std::make_shared<const std::string>(std::move(source)), "") {}

JsonReader::JsonReader(const nlohmann::json& value, std::shared_ptr<const std::string> source,
                       std::string path)
    : value_(&value), source_(std::move(source)), path_(std::move(path)) {}

std::string JsonReader::where() const {
  return path_.empty() ? *source_ : *source_ + ": field '" + path_ + "'";
}

void JsonReader::fail(const std::string& what) const { throw Error(where() + " " + what); }

void JsonReader::expect(bool ok, const std::string& expected) const {
  if (!ok) fail("must be " + expected + ", got " + shown(*value_));
}

bool JsonReader::has(std::string_view key) const {
  return value_->is_object() && value_->contains(key);
}

JsonReader JsonReader::operator[](std::string_view key) const {
  expect(value_->is_object(), "an object");
  // Keys such as "model.safetensors" are quoted so that the path stays readable.
  std::string path = path_;
  if (!plain_key(key))
    path.append("[\"").append(key).append("\"]");
  else if (path.empty())
    path = key;
  else
    path.append(".").append(key);
  const auto it = value_->find(key);
  if (it == value_->end()) JsonReader(*value_, source_, path).fail("is missing");
  return JsonReader(*it, source_, std::move(path));
}

std::vector<JsonReader> JsonReader::elements() const {
  expect(value_->is_array(), "an array");
  std::vector<JsonReader> out;
  out.reserve(value_->size());
  for (size_t i = 0; i < value_->size(); ++i)
    out.push_back(JsonReader((*value_)[i], source_, path_ + "[" + std::to_string(i) + "]"));
  return out;
}

int64_t JsonReader::integer(int64_t min, int64_t max) const {
  const std::optional<int64_t> v = json_int64(*value_);
  std::string expected = "an integer";
  if (min != std::numeric_limits<int64_t>::min() && max != std::numeric_limits<int64_t>::max())
    expected += " from " + std::to_string(min) + " to " + std::to_string(max);
  else if (min != std::numeric_limits<int64_t>::min())
    expected += " >= " + std::to_string(min);
  else if (max != std::numeric_limits<int64_t>::max())
    expected += " <= " + std::to_string(max);
  expect(v && *v >= min && *v <= max, expected);
  return *v;
}

uint64_t JsonReader::unsigned_integer() const {
  expect(value_->is_number_unsigned(), "an integer >= 0");
  return value_->get<uint64_t>();
}

double JsonReader::number() const {
  expect(value_->is_number() && std::isfinite(value_->get<double>()), "a finite number");
  return value_->get<double>();
}

bool JsonReader::boolean() const {
  expect(value_->is_boolean(), "true or false");
  return value_->get<bool>();
}

std::string JsonReader::string() const {
  expect(value_->is_string(), "a string");
  return value_->get<std::string>();
}

std::vector<int64_t> JsonReader::integers() const {
  std::vector<int64_t> out;
  for (const JsonReader& e : elements()) out.push_back(e.integer());
  return out;
}

std::vector<double> JsonReader::numbers() const {
  std::vector<double> out;
  for (const JsonReader& e : elements()) out.push_back(e.number());
  return out;
}

std::vector<std::string> JsonReader::strings() const {
  std::vector<std::string> out;
  for (const JsonReader& e : elements()) out.push_back(e.string());
  return out;
}

}  // namespace moegrad
