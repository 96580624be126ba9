#include "train/glob.h"

#include <algorithm>
#include <cstdint>

#include "core/error.h"

namespace moegrad::train {
namespace {

constexpr size_t kMaxExpansions = 100000;

bool parse_int(const std::string& s, int64_t& out) {
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size() || s.size() - i > 18) return false;
  for (size_t k = i; k < s.size(); ++k)
    if (s[k] < '0' || s[k] > '9') return false;
  out = std::stoll(s);
  return true;
}

// The alternatives of one brace group's content (without its braces).
std::vector<std::string> alternatives(const std::string& content, const std::string& group,
                                      const std::string& context) {
  MOEGRAD_CHECK(!content.empty(), context, ": empty braces in '", group, "'");
  std::vector<std::string> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < content.size(); ++i) {
    if (content[i] == '{') ++depth;
    if (content[i] == '}') --depth;
    if (content[i] == ',' && depth == 0) {
      parts.push_back(content.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(content.substr(start));
  const size_t dots = content.find("..");
  if (parts.size() > 1 || dots == std::string::npos) return parts;
  int64_t lo = 0, hi = 0;
  MOEGRAD_CHECK(parse_int(content.substr(0, dots), lo) && parse_int(content.substr(dots + 2), hi),
                context, ": bad range '", group, "' (expected {FIRST..LAST} with integers)");
  const int64_t step = lo <= hi ? 1 : -1;
  MOEGRAD_CHECK((hi - lo) * step < int64_t(kMaxExpansions), context, ": range '", group,
                "' has more than ", kMaxExpansions, " values");
  std::vector<std::string> values;
  for (int64_t v = lo;; v += step) {
    values.push_back(std::to_string(v));
    if (v == hi) break;
  }
  return values;
}

void expand_into(const std::string& pattern, const std::string& context,
                 std::vector<std::string>& out) {
  const size_t open = pattern.find('{');
  const size_t stray = pattern.find('}');
  MOEGRAD_CHECK(stray == std::string::npos || (open != std::string::npos && open < stray), context,
                ": unbalanced '}' in '", pattern, "'");
  if (open == std::string::npos) {
    MOEGRAD_CHECK(out.size() < kMaxExpansions, context, ": braces expand to more than ",
                  kMaxExpansions, " patterns");
    out.push_back(pattern);
    return;
  }
  size_t close = open;
  for (int depth = 0; close < pattern.size(); ++close) {
    if (pattern[close] == '{') ++depth;
    if (pattern[close] == '}' && --depth == 0) break;
  }
  MOEGRAD_CHECK(close < pattern.size(), context, ": unbalanced '{' in '", pattern, "'");
  const std::string group = pattern.substr(open, close - open + 1);
  for (const std::string& alt : alternatives(group.substr(1, group.size() - 2), group, context))
    expand_into(pattern.substr(0, open) + alt + pattern.substr(close + 1), context, out);
}

// Edit distance from `pattern` to `name` where `*` absorbs any run and `?` any one character.
size_t glob_distance(const std::string& pattern, const std::string& name) {
  std::vector<size_t> prev(name.size() + 1), cur(name.size() + 1);
  for (size_t j = 0; j <= name.size(); ++j) prev[j] = j;
  for (char p : pattern) {
    cur[0] = prev[0] + (p == '*' ? 0 : 1);
    for (size_t j = 1; j <= name.size(); ++j) {
      if (p == '*') {
        cur[j] = std::min(prev[j], cur[j - 1]);
      } else {
        const size_t sub = prev[j - 1] + (p == '?' || p == name[j - 1] ? 0 : 1);
        cur[j] = std::min({sub, prev[j] + 1, cur[j - 1] + 1});
      }
    }
    std::swap(prev, cur);
  }
  return prev[name.size()];
}

}  // namespace

std::vector<std::string> expand_braces(const std::string& pattern, const std::string& context) {
  std::vector<std::string> out;
  expand_into(pattern, context, out);
  return out;
}

bool glob_match(const std::string& pattern, const std::string& name) {
  // Greedy with one backtrack point: on a mismatch, the last `*` absorbs one more character.
  size_t p = 0, n = 0, star = std::string::npos, star_n = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_n = n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++star_n;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::vector<size_t> match_names(const std::string& pattern, const std::vector<std::string>& names,
                                const std::string& context) {
  std::vector<bool> hit(names.size(), false);
  for (const std::string& expansion : expand_braces(pattern, context)) {
    bool any = false;
    for (size_t i = 0; i < names.size(); ++i) {
      if (glob_match(expansion, names[i])) hit[i] = any = true;
    }
    if (any) continue;
    std::string hint;
    for (const std::string& c : closest_names(expansion, names))
      hint += (hint.empty() ? "; closest: " : ", ") + c;
    MOEGRAD_CHECK(false, context, ": pattern '", pattern, "' matches no parameter",
                  expansion == pattern ? "" : " (its expansion '" + expansion + "' matches none)",
                  hint);
  }
  std::vector<size_t> out;
  for (size_t i = 0; i < names.size(); ++i)
    if (hit[i]) out.push_back(i);
  return out;
}

std::vector<std::string> closest_names(const std::string& pattern,
                                       const std::vector<std::string>& names, size_t n) {
  std::vector<std::pair<size_t, size_t>> scored;  // (distance, position)
  for (size_t i = 0; i < names.size(); ++i)
    scored.emplace_back(glob_distance(pattern, names[i]), i);
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < std::min(n, scored.size()); ++i) out.push_back(names[scored[i].second]);
  return out;
}

}  // namespace moegrad::train
