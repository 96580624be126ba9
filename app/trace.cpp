// moegrad trace: which experts each token of a text goes to, layer by layer.
#include <cstdio>
#include <iostream>
#include <sstream>

#include "app/model_args.h"
#include "core/io/atomic_file.h"
#include "data/byte_level.h"
#include "eval/svg_plot.h"
#include "eval/trace.h"
#include "moe/checkpoint.h"

namespace moegrad::app {
namespace {

po::options_description trace_options() {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help and exit");
  add_model_options(options);
  options.add_options()("text", po::value<std::string>(), "text to route; required")(
      "json", po::value<std::string>()->value_name("FILE"),
      "also write every token's experts and weights per layer as JSON")(
      "svg", po::value<std::string>()->value_name("FILE"),
      "also draw the trace: a heatmap of each token's first expert (the number in the cell) "
      "at each layer, coloured by its weight");
  add_device_option(options);
  return options;
}

// A token as printable text: its bytes with control characters, quotes and bytes that are not
// part of a whole UTF-8 character (a token can hold part of one) escaped, so that terminals
// and SVG get valid text.
std::string shown(const std::string& bytes) {
  std::string out;
  auto escape = [&](unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
  };
  for (size_t i = 0; i < bytes.size();) {
    // bytes[i, i + valid) is well-formed UTF-8.
    const size_t bad = data::utf8_invalid_at(std::string_view(bytes).substr(i));
    const size_t valid = bad == std::string::npos ? bytes.size() - i : bad;
    for (size_t k = i; k < i + valid; ++k) {
      const unsigned char c = bytes[k];
      if (c == '\n') out += "\\n";
      else if (c == '\t') out += "\\t";
      else if (c < 0x20 || c == '"') escape(c);
      else out += char(c);
    }
    i += valid;
    if (i < bytes.size()) escape(static_cast<unsigned char>(bytes[i++]));
  }
  return "\"" + out + "\"";
}

}  // namespace

std::string trace_usage() {
  std::ostringstream os;
  os << "Usage: moegrad trace --model DIR --text TEXT [--json FILE] [--svg FILE] [--device D]\n\n"
        "Routes TEXT through the model and prints, for each layer, each token with the experts\n"
        "the router chose for it and their weights (largest first), e.g.\n"
        "  layer 3\n"
        "    0 \"The\"        e12 0.41  e3 0.22  ...\n\n"
     << trace_options();
  return os.str();
}

int run_trace(const Args& args) {
  po::variables_map vm = parse_options("trace", trace_options(), args);
  if (vm.count("help")) {
    std::cout << trace_usage();
    return 0;
  }
  const std::string model_dir = required(vm, "trace", "model");
  const std::string text = required(vm, "trace", "text");
  const Device device = selected_device("trace", vm);
  auto model = load_olmoe(model_dir);
  std::optional<data::Tokenizer> tokenizer = load_tokenizer(vm);
  if (!tokenizer)
    throw Error("trace: " + model_dir + " has no tokenizer.json; pass --tokenizer FILE");
  model->to(device);
  const eval::RoutingTrace trace = eval::trace_routing(*model, tokenizer->encode(text));
  for (size_t l = 0; l < trace.layers.size(); ++l) {
    std::printf("layer %zu\n", l);
    for (size_t t = 0; t < trace.ids.size(); ++t) {
      std::printf("  %3zu %-14s", t, shown(tokenizer->token_bytes(trace.ids[t])).c_str());
      const eval::TokenRouting& r = trace.layers[l][t];
      for (size_t i = 0; i < r.experts.size(); ++i)
        std::printf("  e%-3lld %.2f", static_cast<long long>(r.experts[i]), r.weights[i]);
      std::printf("\n");
    }
  }
  if (vm.count("json")) {
    nlohmann::json j = eval::to_json(trace);
    std::vector<std::string> tokens;
    for (int32_t id : trace.ids) tokens.push_back(tokenizer->decode({id}));
    j["tokens"] = tokens;
    write_file_atomically(vm["json"].as<std::string>(), j.dump(1) + "\n");
  }
  if (vm.count("svg")) {
    // Rows are layers and columns tokens, as the text reads; a cell shows the expert the token
    // went to first, so the same number down a column is a token keeping its expert.
    eval::Heatmap h;
    h.title = "Routing of \"" + (text.size() > 40 ? text.substr(0, 37) + "..." : text) +
              "\": each token's first expert per layer";
    h.x_label = "token";
    h.y_label = "layer";
    h.value_label = "weight of the first expert";
    for (int32_t id : trace.ids) h.column_labels.push_back(shown(tokenizer->token_bytes(id)));
    for (size_t l = 0; l < trace.layers.size(); ++l) {
      h.row_labels.push_back(std::to_string(l));
      std::vector<double> row;
      std::vector<std::string> cells;
      for (const eval::TokenRouting& r : trace.layers[l]) {
        row.push_back(r.weights.empty() ? 0.0 : r.weights[0]);
        cells.push_back(r.experts.empty() ? "" : "e" + std::to_string(r.experts[0]));
      }
      h.values.push_back(row);
      h.cell_text.push_back(cells);
    }
    write_file_atomically(vm["svg"].as<std::string>(), eval::to_svg(h));
  }
  return 0;
}

}  // namespace moegrad::app
