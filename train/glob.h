// Glob patterns over dotted parameter names, as freeze rules and optimizer groups write them:
// `*` any run of characters (dots included), `?` one character, `{a,b,c}` alternatives and
// `{14..15}` integer ranges (inclusive, either direction). Braces nest and expand first, as in
// the shell; `*` and `?` then match within each expansion.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace moegrad::train {

// Every expansion of the braces in `pattern`, in order. Unbalanced or empty braces, a bad
// range, or more than 100000 expansions are errors that begin with `context`.
std::vector<std::string> expand_braces(const std::string& pattern, const std::string& context);

// Whether `name` matches a brace-free `pattern` in full.
bool glob_match(const std::string& pattern, const std::string& name);

// Positions in `names` of those the pattern matches, ascending. Every brace expansion must match
// at least one name, so a typo or an out-of-range `{14..16}` is caught: the error begins with
// `context` and names the expansion, and `closest_names` offers a hint.
std::vector<size_t> match_names(const std::string& pattern, const std::vector<std::string>& names,
                                const std::string& context);

// Up to `n` names nearest to a brace-free `pattern` by edit distance, where `*` and `?` match
// what they would match at no cost; ties keep the order of `names`.
std::vector<std::string> closest_names(const std::string& pattern,
                                       const std::vector<std::string>& names, size_t n = 2);

}  // namespace moegrad::train
