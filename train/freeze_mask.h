// What trains: a freeze mask gives every parameter one of frozen, whole, or a set of rows (of
// its first dim), resolved from freeze rules over the HF parameter names.
//
// Rules, one per line or separated by ';', apply in order; each sets the state of the
// parameters it names, so a later rule overrides an earlier one:
//   train PATTERN              these train whole
//   freeze PATTERN             these are frozen
//   experts LAYERS:EXPERTS     gate_proj, up_proj and down_proj of those experts train whole,
//                              e.g. `14-15:3,7,12` or `-2,-1:all` (negative layers count from
//                              the end of model.layers)
//   rows PATTERN:ROWS          only these rows of the parameters train, added to the rows a
//                              previous `rows` rule gave them, e.g.
//                              `model.embed_tokens.weight:50280-50303,7`
// PATTERN is a glob (train/glob.h). Without rules everything trains; when the first rule is
// `train`, `experts` or `rows` everything else starts frozen, when it is `freeze` everything
// else starts trained. A row set that covers every row is stored as whole.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "autograd/variable.h"
#include "core/io/json_reader.h"

namespace moegrad::train {

using NamedParameters = std::vector<std::pair<std::string, Variable>>;

struct FreezeRule {
  enum class Kind { Train, Freeze, Experts, Rows };
  Kind kind = Kind::Train;
  std::string text;              // the rule as written, for error messages
  std::string pattern;           // Train, Freeze, Rows
  std::vector<int64_t> layers;   // Experts; negative counts from the end
  std::vector<int64_t> experts;  // Experts; empty means all
  std::vector<int64_t> rows;     // Rows; sorted, unique
};

// Rules from config strings: each string may hold several, separated by ';' or newlines; empty
// pieces are skipped. Syntax errors name the rule text.
std::vector<FreezeRule> parse_freeze_rules(const std::vector<std::string>& specs);
FreezeRule parse_freeze_rule(const std::string& text);

struct ParamMask {
  enum class Mode { Frozen, Whole, Rows };
  Mode mode = Mode::Frozen;
  std::vector<int64_t> rows;  // Rows only: sorted, unique, each < size(0)
  bool trains() const { return mode != Mode::Frozen; }
  bool operator==(const ParamMask&) const = default;
};

// Maximal runs of consecutive rows: (first row, count), ascending.
std::vector<std::pair<int64_t, int64_t>> row_runs(const std::vector<int64_t>& rows);

struct TrainableCount {
  int64_t trainable = 0;
  int64_t total = 0;
  double percent() const { return total == 0 ? 0.0 : 100.0 * double(trainable) / double(total); }
};

class FreezeMask {
 public:
  FreezeMask() = default;
  // Resolves `rules` over `params` (names, and shapes for row checks); see the file comment.
  static FreezeMask build(const std::vector<FreezeRule>& rules, const NamedParameters& params);

  // (name, mask) in the parameters' order.
  const std::vector<std::pair<std::string, ParamMask>>& entries() const { return entries_; }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  // Throws naming an unknown parameter.
  const ParamMask& at(const std::string& name) const;

  // Throws unless `params` are exactly the mask's names (in any order) and every row lies
  // within its parameter; names the first offender.
  void check_matches(const NamedParameters& params) const;
  // Sets requires_grad: false for frozen parameters, true for the rest.
  void apply(const NamedParameters& params) const;
  // Exact element counts; a row mask counts rows x row size.
  TrainableCount count(const NamedParameters& params) const;
  // The count, then what trains per layer (consecutive layers alike grouped), e.g.
  //   trainable parameters: 1,234 of 56,789 (2.173%)
  //     model.embed_tokens.weight: rows 50280-50303 (24 of 50304)
  //     layers 14-15: mlp.gate.weight; experts 3,7,12
  std::string summary(const NamedParameters& params) const;

  // {"format": "moegrad.freeze_mask", "version": 1, "parameters": [{"name", "mode":
  // "frozen"|"whole"|"rows", "rows": [[first, last], ...]}]}, in parameter order.
  nlohmann::json to_json() const;
  // Throws naming the file and the field that is malformed.
  static FreezeMask from_json(const JsonReader& j);

  bool operator==(const FreezeMask& other) const { return entries_ == other.entries_; }
  // Empty when equal; otherwise the first difference, e.g. "model.layers.15.mlp.gate.weight:
  // whole here, frozen there".
  std::string difference(const FreezeMask& other) const;

 private:
  explicit FreezeMask(std::vector<std::pair<std::string, ParamMask>> entries);

  std::vector<std::pair<std::string, ParamMask>> entries_;
  std::unordered_map<std::string, size_t> index_;
};

// For the router restriction: per layer with any trained expert weight (whole or rows), its
// trained experts, ascending. Parses `model.layers.{i}.mlp.experts.{e}.` names.
std::map<int64_t, std::vector<int64_t>> trained_experts_by_layer(const FreezeMask& mask);

}  // namespace moegrad::train
