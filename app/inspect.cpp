// moegrad inspect: what an OLMoE checkpoint holds, counted by layer and by kind of parameter,
// with the parameters a token actually uses (the router picks k of E experts).
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

#include "app/cli.h"
#include "moe/checkpoint.h"

namespace moegrad::app {
namespace {

po::options_description inspect_options() {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help and exit")(
      "model", po::value<std::string>(), "HF model directory (config.json + safetensors); required");
  return options;
}

// The kind of a parameter, from its HF name.
std::string kind_of(const std::string& name) {
  for (const char* k : {"mlp.experts", "mlp.gate", "self_attn.q_norm", "self_attn.k_norm", "self_attn",
                        "layernorm", "embed_tokens", "lm_head", "model.norm"}) {
    if (name.find(k) != std::string::npos) {
      std::string s = k;
      if (s == "self_attn.q_norm" || s == "self_attn.k_norm") return "qk_norm";
      if (s == "self_attn") return "attention";
      if (s == "layernorm" || s == "model.norm") return "norm";
      if (s == "mlp.gate") return "router";
      if (s == "mlp.experts") return "experts";
      return s;
    }
  }
  return "other";
}

std::string count_str(int64_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld (%.2fM)", static_cast<long long>(n), double(n) / 1e6);
  return buf;
}

}  // namespace

std::string inspect_usage() {
  std::ostringstream os;
  os << "Usage: moegrad inspect --model DIR\n\n"
        "Loads the checkpoint (validating every tensor against config.json) and prints its\n"
        "parameter counts: total, active per token, per kind and per layer.\n\n"
     << inspect_options();
  return os.str();
}

int run_inspect(const Args& args) {
  po::variables_map vm = parse_options("inspect", inspect_options(), args);
  if (vm.count("help")) {
    std::cout << inspect_usage();
    return 0;
  }
  if (!vm.count("model")) throw UsageError("inspect", "--model is required");
  auto model = load_olmoe(vm["model"].as<std::string>());
  const OlmoeConfig& c = model->config();

  std::map<std::string, int64_t> by_kind;
  std::map<int64_t, int64_t> by_layer;
  int64_t total = 0;
  for (const auto& [name, p] : model->named_parameters()) {
    int64_t n = p.numel();
    total += n;
    by_kind[kind_of(name)] += n;
    const std::string prefix = "model.layers.";
    if (name.rfind(prefix, 0) == 0) by_layer[std::stoll(name.substr(prefix.size()))] += n;
  }
  // A token runs k of the E experts of each layer.
  int64_t experts = by_kind["experts"];
  int64_t active = total - experts + experts / c.num_experts * c.num_experts_per_tok;

  std::cout << "model:            " << vm["model"].as<std::string>() << "\n"
            << "layers:           " << c.num_hidden_layers << ", hidden " << c.hidden_size
            << ", heads " << c.num_attention_heads << " (kv " << c.num_key_value_heads << ")\n"
            << "experts:          " << c.num_experts << " per layer, top-" << c.num_experts_per_tok
            << ", expert width " << c.intermediate_size << "\n"
            << "total params:     " << count_str(total) << "\n"
            << "active per token: " << count_str(active) << "\n\nby kind:\n";
  for (const auto& [kind, n] : by_kind) std::cout << "  " << kind << ": " << count_str(n) << "\n";
  std::cout << "\nby layer:\n";
  for (const auto& [layer, n] : by_layer) std::cout << "  " << layer << ": " << count_str(n) << "\n";
  return 0;
}

}  // namespace moegrad::app
