// Selective adaptation (shared/spec/paper-recipe.md, paper 1): which experts of the last layers
// train for a target language, chosen from a routing analysis (moegrad analyze's
// routing.json), as [freeze] rules the training engine applies.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moegrad::train {

// The [adapt] section.
struct AdaptSection {
  // none (the [freeze] rules alone), seft (the target's language-specific experts), ssft (seft
  // plus shared experts), aeft (every expert), top_n (the n experts with the largest gaps in
  // the target's favour), random (a random other language's specific experts), final_layers
  // (every parameter of the layers) or full (the whole model).
  std::string method = "none";
  std::string language;  // the target; a language without experts of its own borrows its parent's
  std::string routing;   // routing.json of moegrad analyze (not needed by aeft, final_layers, full)
  int64_t layers = 2;    // the last `layers` layers adapt
  int64_t shared_k = 5;  // ssft: shared experts per layer, from the analysis's list
  int64_t top_n = 20;    // top_n: experts per layer
  uint64_t seed = 0;     // random: which other language
  // "uk:ru,ca:es"; empty: the papers' map (ca-es, et-fi, mr-hi, sk-cs, uk-ru, ur-ar, nl-en).
  std::string parents;
  bool restrict_router = true;  // expert methods: route among the trained experts in training
};

struct Adaptation {
  std::vector<std::string> rules;                    // "[freeze]" rules: "experts 2:1,5", ...
  std::map<int64_t, std::vector<int64_t>> experts;   // per adapted layer, for expert methods
  std::string source_language;                       // whose experts (the target or its parent)
};

// The rules of `a` for a model of num_layers layers of num_experts experts; `analysis` is the
// routing.json (ignored by aeft, final_layers and full). Errors name the section's keys and the
// analysis's missing parts.
Adaptation resolve_adaptation(const AdaptSection& a, int64_t num_layers, int64_t num_experts,
                              const nlohmann::json& analysis);

}  // namespace moegrad::train
