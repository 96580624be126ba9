#include "train/freeze_mask.h"

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

#include "core/error.h"
#include "train/glob.h"

namespace moegrad::train {
namespace {

const char* const kExpertProjs[] = {"gate_proj.weight", "up_proj.weight", "down_proj.weight"};

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

std::string without_spaces(std::string s) {
  s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t'; }),
          s.end());
  return s;
}

std::string context_of(const std::string& rule_text) { return "freeze rule '" + rule_text + "'"; }

// An integer at s[pos...] with an optional '-' when `negative`; advances pos.
bool read_int(const std::string& s, size_t& pos, bool negative, int64_t& out) {
  const size_t start = pos;
  if (negative && pos < s.size() && s[pos] == '-') ++pos;
  const size_t digits = pos;
  while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
  if (pos == digits || pos - digits > 18) return false;
  out = std::stoll(s.substr(start, pos - start));
  return true;
}

// "3,7,12-15" (and "-2,-1" or "-3--1" when `negative`): the listed values, in order. Ranges are
// inclusive and ascending.
std::vector<int64_t> parse_int_list(const std::string& list, bool negative, const std::string& ctx,
                                    const char* what) {
  std::vector<int64_t> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t pos = 0;
    int64_t lo = 0, hi = 0;
    bool ok = read_int(item, pos, negative, lo);
    hi = lo;
    if (ok && pos < item.size() && item[pos] == '-') ok = read_int(item, ++pos, negative, hi);
    MOEGRAD_CHECK(ok && pos == item.size(), ctx, ": bad ", what, " '", item,
                  negative ? "' (expected N or FIRST-LAST, negative counting from the end)"
                           : "' (expected N or FIRST-LAST)");
    MOEGRAD_CHECK(lo <= hi, ctx, ": ", what, " range '", item, "' is descending");
    MOEGRAD_CHECK(hi - lo < 100000000, ctx, ": ", what, " range '", item, "' is too large");
    for (int64_t v = lo; v <= hi; ++v) out.push_back(v);
  }
  MOEGRAD_CHECK(!out.empty() && list.back() != ',', ctx, ": empty or malformed ", what, " list '",
                list, "'");
  return out;
}

std::vector<int64_t> sorted_unique(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// "0-3,7,12-15" from sorted unique values.
std::string format_ranges(const std::vector<int64_t>& sorted) {
  std::string out;
  for (const auto& [first, count] : row_runs(sorted)) {
    if (!out.empty()) out += ",";
    out += std::to_string(first);
    if (count > 1) {
      out += '-';
      out += std::to_string(first + count - 1);
    }
  }
  return out;
}

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

const char* mode_name(ParamMask::Mode mode) {
  switch (mode) {
    case ParamMask::Mode::Frozen:
      return "frozen";
    case ParamMask::Mode::Whole:
      return "whole";
    case ParamMask::Mode::Rows:
      return "rows";
  }
  return "";
}

std::string describe(const ParamMask& m) {
  return m.mode == ParamMask::Mode::Rows ? "rows " + format_ranges(m.rows) : mode_name(m.mode);
}

// "model.layers.{i}.REST" -> (i, REST).
std::optional<std::pair<int64_t, std::string>> split_layer(const std::string& name) {
  static const std::string prefix = "model.layers.";
  if (name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  size_t pos = prefix.size();
  int64_t layer = 0;
  if (!read_int(name, pos, false, layer) || pos >= name.size() || name[pos] != '.')
    return std::nullopt;
  return std::make_pair(layer, name.substr(pos + 1));
}

struct ExpertName {
  int64_t layer, expert;
  std::string proj;  // what follows "experts.{e}.", e.g. "gate_proj.weight"
};

// "mlp.experts.{e}.PROJ" (a name within a layer) -> (e, PROJ).
std::optional<std::pair<int64_t, std::string>> split_expert(const std::string& in_layer) {
  static const std::string infix = "mlp.experts.";
  if (in_layer.compare(0, infix.size(), infix) != 0) return std::nullopt;
  size_t pos = infix.size();
  int64_t expert = 0;
  if (!read_int(in_layer, pos, false, expert) || pos >= in_layer.size() || in_layer[pos] != '.')
    return std::nullopt;
  return std::make_pair(expert, in_layer.substr(pos + 1));
}

std::optional<ExpertName> parse_expert_name(const std::string& name) {
  const auto layer = split_layer(name);
  const auto expert = layer ? split_expert(layer->second) : std::nullopt;
  if (!expert) return std::nullopt;
  return ExpertName{layer->first, expert->first, expert->second};
}

bool is_expert_proj(const std::string& proj) {
  return std::find(std::begin(kExpertProjs), std::end(kExpertProjs), proj) !=
         std::end(kExpertProjs);
}

// Positions of the parameters an `experts` rule names; each must exist.
std::vector<size_t> expert_params(const FreezeRule& rule, const std::vector<std::string>& names,
                                  const std::unordered_map<std::string, size_t>& index) {
  const std::string ctx = context_of(rule.text);
  int64_t num_layers = 0;
  std::map<int64_t, std::vector<std::pair<int64_t, size_t>>> experts;  // layer -> (e, position)
  for (size_t i = 0; i < names.size(); ++i) {
    if (const auto split = split_layer(names[i]))
      num_layers = std::max(num_layers, split->first + 1);
    if (const auto e = parse_expert_name(names[i]); e && is_expert_proj(e->proj))
      experts[e->layer].emplace_back(e->expert, i);
  }
  MOEGRAD_CHECK(num_layers > 0, ctx, ": the model has no model.layers.{i} parameters");
  std::vector<size_t> out;
  for (int64_t given : rule.layers) {
    const int64_t layer = given < 0 ? given + num_layers : given;
    MOEGRAD_CHECK(layer >= 0 && layer < num_layers, ctx, ": layer ", given, " out of range for ",
                  num_layers, " layers");
    const auto& present = experts[layer];
    MOEGRAD_CHECK(!present.empty(), ctx, ": layer ", layer, " has no mlp.experts.{e} weights");
    if (rule.experts.empty()) {
      for (const auto& [e, i] : present) out.push_back(i);
      continue;
    }
    for (int64_t e : rule.experts) {
      for (const char* proj : kExpertProjs) {
        const std::string name = "model.layers." + std::to_string(layer) + ".mlp.experts." +
                                 std::to_string(e) + "." + proj;
        const auto it = index.find(name);
        if (it != index.end()) {
          out.push_back(it->second);
          continue;
        }
        std::vector<int64_t> have;
        for (const auto& p : present) have.push_back(p.first);
        MOEGRAD_CHECK(false, ctx, ": no parameter ", name, " (layer ", layer, " has experts ",
                      format_ranges(sorted_unique(have)), ")");
      }
    }
  }
  return out;
}

// What trains in one layer, e.g. "mlp.gate.weight; experts 3,7,12"; empty when nothing does.
std::string describe_layer(const std::vector<std::pair<std::string, const ParamMask*>>& params) {
  if (std::all_of(params.begin(), params.end(),
                  [](const auto& p) { return p.second->mode == ParamMask::Mode::Whole; }))
    return "all";
  std::vector<std::string> parts;
  // Experts alike (the same of their weights train, the same way) are listed together.
  std::map<int64_t, std::string> expert_desc;
  std::map<int64_t, bool> expert_full;
  for (const auto& [suffix, mask] : params) {
    if (const auto e = split_expert(suffix)) {
      const auto& [expert, proj] = *e;
      const bool full = mask->mode == ParamMask::Mode::Whole && is_expert_proj(proj);
      expert_full.try_emplace(expert, true).first->second &= full;
      if (mask->trains()) {
        std::string& d = expert_desc[expert];
        d += (d.empty() ? "" : ", ") + proj +
             (mask->mode == ParamMask::Mode::Rows ? " " + describe(*mask) : "");
      }
    } else if (mask->trains()) {
      parts.push_back(suffix + (mask->mode == ParamMask::Mode::Rows ? " " + describe(*mask) : ""));
    }
  }
  std::map<std::string, std::vector<int64_t>> groups;
  for (const auto& [e, d] : expert_desc) groups[expert_full[e] ? "" : d].push_back(e);
  for (const auto& [d, es] : groups)
    parts.push_back("experts " + format_ranges(es) + (d.empty() ? "" : " (" + d + ")"));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

}  // namespace

FreezeRule parse_freeze_rule(const std::string& text) {
  FreezeRule rule;
  rule.text = trim(text);
  const std::string ctx = context_of(rule.text);
  const size_t space = rule.text.find_first_of(" \t");
  const std::string kind = rule.text.substr(0, space);
  const std::string arg = space == std::string::npos ? "" : trim(rule.text.substr(space));
  MOEGRAD_CHECK(kind == "train" || kind == "freeze" || kind == "experts" || kind == "rows", ctx,
                ": unknown rule '", kind, "' (expected train, freeze, experts or rows)");
  MOEGRAD_CHECK(!arg.empty(), ctx, ": missing ",
                kind == "experts" ? "LAYERS:EXPERTS"
                : kind == "rows"  ? "PATTERN:ROWS"
                                  : "PATTERN");
  if (kind == "train" || kind == "freeze") {
    rule.kind = kind == "train" ? FreezeRule::Kind::Train : FreezeRule::Kind::Freeze;
    MOEGRAD_CHECK(arg.find_first_of(" \t") == std::string::npos, ctx,
                  ": expected one pattern, got '", arg, "'");
    rule.pattern = arg;
    expand_braces(rule.pattern, ctx);  // syntax errors now rather than at resolution
    return rule;
  }
  const std::string compact = without_spaces(arg);
  if (kind == "experts") {
    rule.kind = FreezeRule::Kind::Experts;
    const size_t colon = compact.find(':');
    MOEGRAD_CHECK(colon != std::string::npos && compact.find(':', colon + 1) == std::string::npos,
                  ctx, ": expected LAYERS:EXPERTS, e.g. 14-15:3,7,12 or -1:all");
    rule.layers = sorted_unique(parse_int_list(compact.substr(0, colon), true, ctx, "layer"));
    const std::string experts = compact.substr(colon + 1);
    if (experts != "all")
      rule.experts = sorted_unique(parse_int_list(experts, false, ctx, "expert"));
    return rule;
  }
  rule.kind = FreezeRule::Kind::Rows;
  const size_t colon = compact.rfind(':');
  MOEGRAD_CHECK(colon != std::string::npos && colon > 0, ctx,
                ": expected PATTERN:ROWS, e.g. model.embed_tokens.weight:50280-50303,7");
  rule.pattern = compact.substr(0, colon);
  expand_braces(rule.pattern, ctx);
  rule.rows = sorted_unique(parse_int_list(compact.substr(colon + 1), false, ctx, "row"));
  return rule;
}

std::vector<FreezeRule> parse_freeze_rules(const std::vector<std::string>& specs) {
  std::vector<FreezeRule> rules;
  for (const std::string& spec : specs) {
    std::string piece;
    for (char c : spec + ";") {
      if (c != ';' && c != '\n') {
        piece += c;
        continue;
      }
      if (!trim(piece).empty()) rules.push_back(parse_freeze_rule(piece));
      piece.clear();
    }
  }
  return rules;
}

std::vector<std::pair<int64_t, int64_t>> row_runs(const std::vector<int64_t>& rows) {
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (int64_t r : rows) {
    if (!runs.empty() && runs.back().first + runs.back().second == r)
      ++runs.back().second;
    else
      runs.emplace_back(r, 1);
  }
  return runs;
}

FreezeMask::FreezeMask(std::vector<std::pair<std::string, ParamMask>> entries)
    : entries_(std::move(entries)) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    MOEGRAD_CHECK(index_.emplace(entries_[i].first, i).second, "freeze mask: parameter ",
                  entries_[i].first, " appears twice");
  }
}

FreezeMask FreezeMask::build(const std::vector<FreezeRule>& rules, const NamedParameters& params) {
  std::vector<std::string> names;
  for (const auto& [name, p] : params) names.push_back(name);
  const bool default_trains = rules.empty() || rules.front().kind == FreezeRule::Kind::Freeze;
  std::vector<std::pair<std::string, ParamMask>> entries;
  for (const auto& name : names)
    entries.emplace_back(
        name, ParamMask{default_trains ? ParamMask::Mode::Whole : ParamMask::Mode::Frozen, {}});
  FreezeMask mask(std::move(entries));

  for (const FreezeRule& rule : rules) {
    const std::string ctx = context_of(rule.text);
    switch (rule.kind) {
      case FreezeRule::Kind::Train:
      case FreezeRule::Kind::Freeze:
        for (size_t i : match_names(rule.pattern, names, ctx))
          mask.entries_[i].second =
              ParamMask{rule.kind == FreezeRule::Kind::Train ? ParamMask::Mode::Whole
                                                             : ParamMask::Mode::Frozen,
                        {}};
        break;
      case FreezeRule::Kind::Experts:
        for (size_t i : expert_params(rule, names, mask.index_))
          mask.entries_[i].second = ParamMask{ParamMask::Mode::Whole, {}};
        break;
      case FreezeRule::Kind::Rows:
        for (size_t i : match_names(rule.pattern, names, ctx)) {
          const Variable& p = params[i].second;
          MOEGRAD_CHECK(p.dim() >= 1, ctx, ": ", names[i], " is a scalar and has no rows");
          MOEGRAD_CHECK(rule.rows.back() < p.size(0), ctx, ": row ", rule.rows.back(),
                        " out of range for ", names[i], " with ", p.size(0), " rows");
          ParamMask& m = mask.entries_[i].second;
          if (m.mode != ParamMask::Mode::Rows) m = ParamMask{ParamMask::Mode::Rows, {}};
          m.rows.insert(m.rows.end(), rule.rows.begin(), rule.rows.end());
          m.rows = sorted_unique(std::move(m.rows));
        }
        break;
    }
  }
  for (size_t i = 0; i < names.size(); ++i) {
    ParamMask& m = mask.entries_[i].second;
    if (m.mode == ParamMask::Mode::Rows && int64_t(m.rows.size()) == params[i].second.size(0))
      m = ParamMask{ParamMask::Mode::Whole, {}};
  }
  return mask;
}

const ParamMask& FreezeMask::at(const std::string& name) const {
  const auto it = index_.find(name);
  MOEGRAD_CHECK(it != index_.end(), "freeze mask: no parameter ", name);
  return entries_[it->second].second;
}

void FreezeMask::check_matches(const NamedParameters& params) const {
  std::set<std::string> seen;
  for (const auto& [name, p] : params) {
    MOEGRAD_CHECK(contains(name), "freeze mask: the model's parameter ", name,
                  " is not in the mask (built for another model?)");
    seen.insert(name);
    const ParamMask& m = at(name);
    if (m.mode != ParamMask::Mode::Rows) continue;
    MOEGRAD_CHECK(p.dim() >= 1 && m.rows.back() < p.size(0), "freeze mask: row ", m.rows.back(),
                  " of ", name, " out of range for its shape ", shape_str(p.shape()));
  }
  for (const auto& [name, m] : entries_) {
    MOEGRAD_CHECK(seen.count(name), "freeze mask: the mask names ", name,
                  ", which the model lacks (built for another model?)");
  }
}

void FreezeMask::apply(const NamedParameters& params) const {
  check_matches(params);
  for (const auto& [name, p] : params) {
    Variable v = p;
    v.set_requires_grad(at(name).trains());
  }
}

TrainableCount FreezeMask::count(const NamedParameters& params) const {
  check_matches(params);
  TrainableCount c;
  for (const auto& [name, p] : params) {
    c.total += p.numel();
    const ParamMask& m = at(name);
    if (m.mode == ParamMask::Mode::Whole) c.trainable += p.numel();
    if (m.mode == ParamMask::Mode::Rows)
      c.trainable += int64_t(m.rows.size()) * (p.numel() / p.size(0));
  }
  return c;
}

std::string FreezeMask::summary(const NamedParameters& params) const {
  const TrainableCount c = count(params);
  std::ostringstream os;
  os.precision(4);
  os << "trainable parameters: " << with_commas(c.trainable) << " of " << with_commas(c.total)
     << " (" << c.percent() << "%)";
  // Items in parameter order: a parameter outside the layers, or a layer at its first parameter.
  struct Item {
    int64_t layer = -1;  // -1: a parameter outside model.layers
    std::string text;
  };
  std::vector<Item> items;
  std::map<int64_t, std::vector<std::pair<std::string, const ParamMask*>>> layers;
  for (const auto& [name, p] : params) {
    const ParamMask& m = at(name);
    if (const auto split = split_layer(name)) {
      if (layers[split->first].empty()) items.push_back({split->first, ""});
      layers[split->first].emplace_back(split->second, &m);
    } else if (m.trains()) {
      items.push_back({-1, name + (m.mode == ParamMask::Mode::Rows
                                       ? ": " + describe(m) + " (" + std::to_string(m.rows.size()) +
                                             " of " + std::to_string(p.size(0)) + ")"
                                       : "")});
    }
  }
  for (Item& item : items)
    if (item.layer >= 0) item.text = describe_layer(layers[item.layer]);
  for (size_t i = 0; i < items.size();) {
    size_t j = i + 1;
    if (items[i].layer < 0) {
      os << "\n  " << items[i].text;
      i = j;
      continue;
    }
    while (j < items.size() && items[j].layer == items[j - 1].layer + 1 &&
           items[j].text == items[i].text)
      ++j;
    if (!items[i].text.empty()) {
      os << "\n  layer" << (j - i > 1 ? "s " : " ") << items[i].layer;
      if (j - i > 1) os << "-" << items[j - 1].layer;
      os << ": " << items[i].text;
    }
    i = j;
  }
  return os.str();
}

nlohmann::json FreezeMask::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, m] : entries_) {
    nlohmann::json e = {{"name", name}, {"mode", mode_name(m.mode)}};
    if (m.mode == ParamMask::Mode::Rows) {
      nlohmann::json runs = nlohmann::json::array();
      for (const auto& [first, count] : row_runs(m.rows))
        runs.push_back({first, first + count - 1});
      e["rows"] = runs;
    }
    list.push_back(e);
  }
  return {{"format", "moegrad.freeze_mask"}, {"version", 1}, {"parameters", list}};
}

FreezeMask FreezeMask::from_json(const JsonReader& j) {
  if (!(j.has("format") && j.json()["format"] == "moegrad.freeze_mask"))
    j.fail("is not a moegrad.freeze_mask object");
  const int64_t version = j["version"].integer();
  if (version != 1) j["version"].fail("is " + std::to_string(version) + ", this build reads 1");
  std::vector<std::pair<std::string, ParamMask>> entries;
  for (const JsonReader& e : j["parameters"].elements()) {
    const std::string name = e["name"].string();
    const std::string mode = e["mode"].string();
    ParamMask m;
    if (mode == "whole") {
      m.mode = ParamMask::Mode::Whole;
    } else if (mode == "rows") {
      m.mode = ParamMask::Mode::Rows;
      for (const JsonReader& run : e["rows"].elements()) {
        const std::vector<int64_t> ends = run.integers();
        const bool ok = ends.size() == 2 && ends[0] >= 0 && ends[0] <= ends[1] &&
                        (m.rows.empty() || ends[0] > m.rows.back()) && ends[1] - ends[0] < 100000000;
        if (!ok) run.fail("is not a run [first, last] of " + name + "'s rows after the last one");
        for (int64_t r = ends[0]; r <= ends[1]; ++r) m.rows.push_back(r);
      }
      if (m.rows.empty()) e["rows"].fail("holds no rows of " + name);
    } else if (mode != "frozen") {
      e["mode"].fail("must be frozen, whole or rows, got '" + mode + "'");
    }
    entries.emplace_back(name, std::move(m));
  }
  return FreezeMask(std::move(entries));
}

std::string FreezeMask::difference(const FreezeMask& other) const {
  for (size_t i = 0; i < std::min(entries_.size(), other.entries_.size()); ++i) {
    const auto& [a_name, a] = entries_[i];
    const auto& [b_name, b] = other.entries_[i];
    if (a_name != b_name)
      return "parameter " + std::to_string(i) + " is " + a_name + " here, " + b_name + " there";
    if (!(a == b)) return a_name + ": " + describe(a) + " here, " + describe(b) + " there";
  }
  if (entries_.size() != other.entries_.size())
    return std::to_string(entries_.size()) + " parameters here, " +
           std::to_string(other.entries_.size()) + " there";
  return "";
}

std::map<int64_t, std::vector<int64_t>> trained_experts_by_layer(const FreezeMask& mask) {
  std::map<int64_t, std::vector<int64_t>> out;
  for (const auto& [name, m] : mask.entries()) {
    const auto e = parse_expert_name(name);
    if (e && m.trains()) out[e->layer].push_back(e->expert);
  }
  for (auto& [layer, experts] : out) experts = sorted_unique(std::move(experts));
  return out;
}

}  // namespace moegrad::train
