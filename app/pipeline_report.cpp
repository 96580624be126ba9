#include "app/pipeline_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/io/atomic_file.h"
#include "eval/svg_plot.h"
#include "train/config.h"

namespace moegrad::app {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// The JSON of `dir/rel`, or null when the file is missing or malformed (its stage has not run).
json read_json(const fs::path& dir, const std::string& rel) {
  std::ifstream in(dir / rel);
  if (!in) return json();
  json j = json::parse(in, nullptr, false);
  return j.is_discarded() ? json() : j;
}

double number_at(const json& j, const std::string& key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : kNaN;
}

std::string fmt(double v, const char* format = "%.3f") {
  if (!std::isfinite(v)) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string count(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
  return s;
}

// [0,1,2,3,7,9,10] as "0-3,7,9-10"; in the order given otherwise.
std::string expert_list(const json& list) {
  std::vector<int64_t> v;
  for (const json& e : list) v.push_back(e.get<int64_t>());
  if (!std::is_sorted(v.begin(), v.end())) {
    std::string out;
    for (int64_t e : v) out += (out.empty() ? "" : ",") + std::to_string(e);
    return out;
  }
  std::string out;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(v[i]) +
           (j > i ? (j == i + 1 ? "," : "-") + std::to_string(v[j]) : "");
    i = j + 1;
  }
  return out;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  int64_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) s += x, ++n;
  return n ? s / double(n) : kNaN;
}

// A markdown table.
class Table {
 public:
  explicit Table(std::vector<std::string> header, std::vector<bool> right = {})
      : header_(std::move(header)), right_(std::move(right)) {
    right_.resize(header_.size(), true);
    if (!right_.empty()) right_[0] = false;
  }
  void row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  bool empty() const { return rows_.empty(); }
  std::string str() const {
    std::ostringstream os;
    os << "|";
    for (const std::string& h : header_) os << " " << h << " |";
    os << "\n|";
    for (size_t i = 0; i < header_.size(); ++i) os << (right_[i] ? " ---: |" : " --- |");
    os << "\n";
    for (const auto& r : rows_) {
      os << "|";
      for (size_t i = 0; i < header_.size(); ++i) os << " " << (i < r.size() ? r[i] : "") << " |";
      os << "\n";
    }
    return os.str() + "\n";
  }

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

std::vector<std::string> svg_files(const fs::path& dir) {
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".svg") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Every figure of `rel` (relative to the report), as images with their file names as titles.
std::string figures(const fs::path& dir, const std::string& rel) {
  std::ostringstream os;
  for (const std::string& f : svg_files(dir / rel))
    os << "![" << f << "](" << rel << "/" << f << ")\n";
  return os.str().empty() ? "" : os.str() + "\n";
}

class Report {
 public:
  explicit Report(const ReportInputs& in) : in_(in), c_(*in.config), dir_(in.dir) {
    for (const std::string& m : in_.models) results_[m] = read_json(dir_, "benchmarks/" + m + "/results.json");
  }

  std::string str() {
    header();
    stages();
    models();
    adaptation();
    benchmarks();
    training_curves();
    routing();
    steering();
    profile();
    return os_.str();
  }

 private:
  bool proxy(const char* bench) const {
    return (std::string(bench) == "multiblimp" ? c_.multiblimp : c_.belebele) == "proxy";
  }
  std::string stage_of(const std::string& model) const {
    return model == "base" ? (c_.base.empty() ? "pretrain" : "") : model;
  }
  double metric(const std::string& model, const std::string& bench, const std::string& lang,
                const std::string& key) const {
    const json& r = results_.at(model);
    if (!r.is_object() || !r.contains(bench) || !r[bench].contains(lang)) return kNaN;
    return number_at(r[bench][lang], key);
  }
  double others_mean(const std::string& model, const std::string& bench, const std::string& key) const {
    std::vector<double> v;
    for (const std::string& l : c_.languages)
      if (l != c_.target) v.push_back(metric(model, bench, l, key));
    return mean(v);
  }

  void header() {
    os_ << "# Experiment report: " << dir_.filename().string() << "\n\n"
        << "Written by `moegrad run " << c_.source << "` on " << today() << ". Languages: "
        << join(c_.languages) << "; English reference `" << c_.english << "`";
    if (!c_.target.empty()) os_ << "; adaptation target `" << c_.target << "`";
    os_ << ". Base model: "
        << (c_.base.empty() ? "pretrained here on " + c_.english + " ([pretrain])" : "`" + c_.base + "`")
        << ". Every number below is in the files next to this report; each section names them.\n\n";
    if (proxy("multiblimp") || proxy("belebele"))
      os_ << "> **PROXY benchmarks.** The " << (proxy("multiblimp") ? "MultiBLiMP" : "")
          << (proxy("multiblimp") && proxy("belebele") ? " and " : "") << (proxy("belebele") ? "Belebele" : "")
          << " numbers here come from proxy sets made from held-out documents of the corpus "
             "(benchmarks/proxies/: minimal pairs by swapping two adjacent words; which sentence "
             "comes next, of four). They are in those benchmarks' formats but are not those "
             "benchmarks; point [benchmarks] at the real files for the papers' numbers.\n\n";
  }

  static std::string today() {
    char buf[32];
    const std::time_t t = std::time(nullptr);
    std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
    return buf;
  }
  static std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
  }

  void stages() {
    os_ << "## Stages\n\n";
    Table t({"stage", "what", "seconds"}, {false, false, true});
    double total = 0;
    for (const std::string& s : in_.stages) {
      const json j = read_json(dir_, "stages/" + s + ".json");
      const double sec = number_at(j, "seconds");
      if (std::isfinite(sec)) total += sec;
      t.row({s, j.is_object() ? j.value("what", "") : "not run", fmt(sec, "%.0f")});
    }
    t.row({"**total**", "", fmt(total, "%.0f")});
    os_ << t.str() << "Each stage's command is in stages/<stage>.json; each training stage's "
        << "config in configs/.\n\n";
  }

  void models() {
    os_ << "## Models and training\n\n";
    Table t({"model", "trained on", "steps", "tokens", "trainable parameters", "% trained",
             "optimizer state", "seconds", "tokens/s"});
    for (const std::string& m : in_.models) {
      const std::string stage = stage_of(m);
      if (stage.empty()) {
        t.row({m, "(given)", "", "", "", "", "", "", ""});
        continue;
      }
      const json s = read_json(dir_, stage + "/summary.json");
      const json tr = read_json(dir_, stage + "/trainable.json");
      if (!s.is_object() || !tr.is_object()) {
        t.row({m, "not trained yet"});
        continue;
      }
      t.row({m, train::load_config((dir_ / "configs" / (stage + ".cfg")).string(), {}, false).data.languages,
             count(s.value("steps", int64_t(0))), count(s.value("tokens", int64_t(0))),
             count(tr.value("trainable", int64_t(0))) + " of " + count(tr.value("total", int64_t(0))),
             fmt(number_at(tr, "percent"), "%.3f%%"),
             fmt(number_at(tr, "optimizer_state_bytes") / 1048576.0, "%.1f MiB"),
             fmt(number_at(s, "seconds"), "%.0f"), fmt(number_at(s, "tokens_per_s"), "%.0f")});
    }
    os_ << t.str();
  }

  void adaptation() {
    if (!c_.runs("adapt")) return;
    const std::string tgt = c_.target;
    os_ << "## Selective adaptation to " << tgt << "\n\n"
        << "The variants start from the " << in_.adapted_from << " model and train on " << tgt
        << " only. Accuracy is on " << tgt << " (" << (proxy("multiblimp") ? "PROXY " : "")
        << "MultiBLiMP acc, " << (proxy("belebele") ? "PROXY " : "") << "Belebele acc, held-out "
        << "perplexity); \"others\" is the mean over the other languages (what adaptation "
        << "costs them).\n\n";
    Table t({"model", "% trained", "seconds", "MultiBLiMP " + tgt, "Belebele " + tgt,
             "ppl " + tgt, "MultiBLiMP others", "Belebele others", "ppl others"});
    for (const std::string& m : in_.models) {
      const std::string stage = stage_of(m);
      const json tr = stage.empty() ? json() : read_json(dir_, stage + "/trainable.json");
      const json s = stage.empty() ? json() : read_json(dir_, stage + "/summary.json");
      t.row({m, m.rfind("adapt-", 0) == 0 ? fmt(number_at(tr, "percent"), "%.3f%%") : "",
             m.rfind("adapt-", 0) == 0 ? fmt(number_at(s, "seconds"), "%.0f") : "",
             fmt(metric(m, "multiblimp", tgt, "acc")), fmt(metric(m, "belebele", tgt, "acc")),
             fmt(metric(m, "perplexity", tgt, "ppl"), "%.2f"),
             fmt(others_mean(m, "multiblimp", "acc")), fmt(others_mean(m, "belebele", "acc")),
             fmt(others_mean(m, "perplexity", "ppl"), "%.2f")});
    }
    os_ << t.str();
    for (const std::string& m : c_.methods) {
      const json tr = read_json(dir_, "adapt-" + m + "/trainable.json");
      if (!tr.is_object()) continue;
      os_ << "- **" << m << "** trains " << count(tr.value("trainable", int64_t(0))) << " of "
          << count(tr.value("total", int64_t(0))) << " parameters ("
          << fmt(number_at(tr, "percent"), "%.3f%%") << ")";
      if (tr.contains("adaptation") && !tr["adaptation"].value("experts", json::object()).empty()) {
        const json& a = tr["adaptation"];
        const std::string of = a.value("experts_of", "");
        if (!of.empty() && of != tgt) os_ << ", the experts of " << of << " (" << tgt << "'s parent)";
        os_ << "; experts per layer:";
        for (const auto& [layer, list] : a["experts"].items())
          os_ << " " << layer << ": [" << expert_list(list) << "]";
      }
      os_ << ".\n";
    }
    os_ << "\n";
  }

  void benchmark_table(const std::string& bench, const std::string& key, const std::string& title,
                       const char* format) {
    bool any = false;
    for (const auto& [m, r] : results_) any = any || (r.is_object() && r.contains(bench));
    if (!any) return;
    os_ << "### " << title << "\n\n";
    std::vector<std::string> header = {"model"};
    for (const std::string& l : c_.languages) header.push_back(l);
    header.push_back("mean");
    Table t(header);
    for (const std::string& m : in_.models) {
      std::vector<std::string> row = {m};
      std::vector<double> values;
      for (const std::string& l : c_.languages) {
        values.push_back(metric(m, bench, l, key));
        row.push_back(fmt(values.back(), format));
      }
      row.push_back(fmt(mean(values), format));
      t.row(row);
    }
    os_ << t.str();
  }

  void benchmarks() {
    if (!c_.runs("benchmarks")) return;
    os_ << "## Benchmarks per language\n\n"
        << "benchmarks/<model>/results.json and its CSV tables. The number of items per language "
        << "is in results.json.\n\n";
    benchmark_table("multiblimp", "acc", std::string(proxy("multiblimp") ? "PROXY " : "") +
                                             "MultiBLiMP accuracy (0-shot, log p(sen) > log p(wrong_sen))",
                    "%.3f");
    benchmark_table("belebele", "acc",
                    std::string(proxy("belebele") ? "PROXY " : "") + "Belebele accuracy (" +
                        std::to_string(c_.shots) + "-shot, " + c_.prompt + " prompt)",
                    "%.3f");
    benchmark_table("perplexity", "ppl", "Held-out perplexity (per token)", "%.2f");
    benchmark_table("perplexity", "bpb", "Held-out bits per byte (comparable across languages)",
                    "%.3f");
  }

  // Training loss of each training stage, and the CPT model's held-out loss per language at
  // each evaluation, as figures written next to the report.
  void training_curves() {
    eval::LinePlot loss{"Training loss per step", "step", "loss (CE + MoE losses)", {}, {}, true};
    std::vector<std::vector<std::pair<double, double>>> curves;
    for (const std::string& stage : c_.training_stages()) {
      std::ifstream in(dir_ / stage / "metrics.jsonl");
      std::vector<std::pair<double, double>> points;
      std::string line;
      while (std::getline(in, line)) {
        const json j = json::parse(line, nullptr, false);
        if (j.is_object() && j.value("type", "") == "step")
          points.push_back({j.value("step", 0.0), j.value("loss", kNaN)});
      }
      if (!points.empty()) {
        curves.push_back(points);
        loss.series.push_back({stage, {}});
      }
    }
    if (curves.empty()) return;
    // One x axis for every stage; a stage's steps beyond its run are gaps. Every 10th step
    // keeps the figure small.
    size_t longest = 0;
    for (const auto& c : curves) longest = std::max(longest, c.size());
    const size_t stride = std::max<size_t>(1, longest / 200);
    for (size_t i = 0; i < longest; i += stride) loss.x.push_back(double(i + 1));
    for (size_t s = 0; s < curves.size(); ++s)
      for (size_t i = 0; i < longest; i += stride)
        loss.series[s].y.push_back(i < curves[s].size() ? curves[s][i].second : kNaN);
    fs::create_directories(dir_ / "figures");
    write_file_atomically((dir_ / "figures/training_loss.svg").string(), eval::to_svg(loss));
    os_ << "## Training curves\n\n![training_loss.svg](figures/training_loss.svg)\n";

    std::ifstream in(dir_ / "cpt" / "metrics.jsonl");
    eval::LinePlot heldout{"Held-out loss per language during continual pre-training", "step",
                           "loss (nats per token)", {}, {}, true};
    std::map<std::string, std::vector<double>> per_lang;
    std::string line;
    while (std::getline(in, line)) {
      const json j = json::parse(line, nullptr, false);
      if (!j.is_object() || j.value("type", "") != "eval" || !j.contains("languages")) continue;
      heldout.x.push_back(j.value("step", 0.0));
      for (const std::string& l : c_.languages) {
        auto& v = per_lang[l];
        v.resize(heldout.x.size() - 1, kNaN);
        v.push_back(j["languages"].contains(l) ? number_at(j["languages"][l], "loss") : kNaN);
      }
    }
    if (heldout.x.size() >= 2) {
      for (const std::string& l : c_.languages) heldout.series.push_back({l, per_lang[l]});
      write_file_atomically((dir_ / "figures/cpt_heldout_loss.svg").string(), eval::to_svg(heldout));
      os_ << "![cpt_heldout_loss.svg](figures/cpt_heldout_loss.svg)\n";
    }
    os_ << "\n";
  }

  void routing() {
    if (!c_.runs("analysis")) return;
    os_ << "## Routing analysis\n\n"
        << "analysis/<model>/: routing.json (every number), layers.csv, summary.csv, "
        << "experts.csv, overlap.csv and figures/. Held-out text of every language; entropy in "
        << "nats (mean over languages), JSD in nats averaged over language pairs, specialisation "
        << "IG(L;E)/H(L).\n\n";
    std::vector<std::string> analysed = {"base"};
    if (c_.runs("cpt")) analysed.push_back("cpt");
    std::map<std::string, json> a;
    for (const std::string& m : analysed) a[m] = read_json(dir_, "analysis/" + m + "/routing.json");
    std::vector<std::string> header = {"layer"};
    for (const char* metric : {"entropy", "JSD", "JSD without " , "specialisation"})
      for (const std::string& m : analysed)
        header.push_back(std::string(metric) + (std::string(metric) == "JSD without " ? c_.english : "") +
                         " (" + m + ")");
    Table t(header);
    size_t layers = 0;
    for (const auto& [m, j] : a)
      if (j.is_object() && j.contains("per_layer")) layers = std::max(layers, j["per_layer"].size());
    for (size_t l = 0; l < layers; ++l) {
      std::vector<std::string> row = {std::to_string(l)};
      auto layer_of = [&](const std::string& m) -> json {
        const json& j = a[m];
        return j.is_object() && j.contains("per_layer") && l < j["per_layer"].size() ? j["per_layer"][l] : json();
      };
      for (const std::string& m : analysed) {
        std::vector<double> h;
        const json layer = layer_of(m);
        if (layer.is_object() && layer.contains("entropy"))
          for (const auto& [lang, v] : layer["entropy"].items()) h.push_back(v.is_number() ? v.get<double>() : kNaN);
        row.push_back(fmt(mean(h)));
      }
      for (const char* key : {"jsd_mean", "jsd_mean_without_english", "specialization"})
        for (const std::string& m : analysed) row.push_back(fmt(number_at(layer_of(m), key), "%.4f"));
      t.row(row);
    }
    os_ << t.str();
    for (const std::string& m : analysed) {
      const json& j = a[m];
      if (!j.is_object()) continue;
      if (j.contains("vocabulary_overlap")) {
        const json& r = j["vocabulary_overlap"]["pearson_with_last_layer_jsd"];
        os_ << "Vocabulary overlap against the last layer's JSD, Pearson r over language pairs ("
            << m << "): Jaccard " << fmt(number_at(r, "jaccard")) << ", frequency-weighted "
            << fmt(number_at(r, "weighted")) << " (overlap.csv; token types used at least "
            << c_.overlap_min_count << " times).\n\n";
      }
    }
    experts(a);
    for (const std::string& m : analysed) {
      os_ << "### Figures: " << m << " model\n\n" << figures(dir_, "analysis/" + m + "/figures");
    }
    if (c_.runs("cpt")) {
      const std::string dyn = figures(dir_, "cpt/routing/figures");
      if (!dyn.empty())
        os_ << "### Routing across continual pre-training\n\nEach per-layer metric at each "
               "routing snapshot of the CPT run (cpt/routing/step-N/).\n\n"
            << dyn;
    }
  }

  // The language-specific and shared experts of the layers the adaptation uses.
  void experts(const std::map<std::string, json>& a) {
    const std::string m = in_.adapted_from;
    auto it = a.find(m);
    if (it == a.end() || !it->second.is_object() || !it->second.contains("per_layer")) return;
    const json& layers = it->second["per_layer"];
    os_ << "Language-specific experts (activation gap >= " << c_.alpha << ") and the " << c_.shared_k
        << " shared experts of the last layers of the " << m << " model (experts.csv has every layer):\n\n";
    Table t({"layer", "language-specific experts", "shared experts"}, {false, false, false});
    const size_t first = layers.size() > 2 ? layers.size() - 2 : 0;
    for (size_t l = first; l < layers.size(); ++l) {
      std::string specific, shared;
      if (layers[l].contains("language_specific"))
        for (const auto& [lang, list] : layers[l]["language_specific"].items())
          specific += (specific.empty() ? "" : "; ") + lang + ": " + expert_list(list);
      if (layers[l].contains("shared"))
        for (const json& x : layers[l]["shared"]) shared += (shared.empty() ? "" : ", ") + x.dump();
      t.row({std::to_string(l), specific, shared});
    }
    os_ << t.str();
  }

  void steering() {
    if (!c_.runs("steering")) return;
    os_ << "## Router steering\n\n";
    const json file = read_json(dir_, "steering/steering.json");
    const json r = read_json(dir_, "steering/results.json");
    if (!file.is_object() || !r.is_object()) {
      os_ << "Not run yet.\n\n";
      return;
    }
    int64_t promoted = 0;
    std::string layers;
    if (file.contains("promote"))
      for (const auto& [layer, list] : file["promote"].items()) {
        promoted += int64_t(list.size());
        layers += " " + layer + ": [" + expert_list(list) + "]";
      }
    os_ << "The " << c_.steer_model << " model, " << c_.steer_mode << " steering ("
        << (c_.steer_mode == "hard" ? "delta " + fmt(c_.delta, "%g") : "lambda " + fmt(c_.lambda, "%g"))
        << ") promoting the experts " << (c_.steer_language.empty() ? c_.english : c_.steer_language)
        << " activates more than " << (c_.steer_reference.empty() ? "the mean expert" : c_.steer_reference)
        << " by tau " << fmt(c_.tau, "%g") << " (steering/steering.json): " << promoted
        << " experts" << (layers.empty() ? "" : ";" + layers) << ".\n\n";
    if (promoted == 0)
      os_ << "No expert passed the threshold, so steering changes nothing; lower steering.tau "
             "(a small model's activation frequencies differ less).\n\n";
    Table t({"language", "MultiBLiMP acc", "steered", "difference", "Belebele acc", "steered",
             "difference", "ppl", "steered"});
    auto cell = [&](const std::string& bench, const std::string& lang, const char* key, bool steered) {
      if (!r.contains(bench) || !r[bench].contains(lang)) return kNaN;
      const json& j = r[bench][lang];
      return steered ? (j.contains("steered") ? number_at(j["steered"], key) : kNaN) : number_at(j, key);
    };
    for (const std::string& l : c_.languages) {
      const double m0 = cell("multiblimp", l, "acc", false), m1 = cell("multiblimp", l, "acc", true);
      const double b0 = cell("belebele", l, "acc", false), b1 = cell("belebele", l, "acc", true);
      t.row({l, fmt(m0), fmt(m1), fmt(m1 - m0, "%+.3f"), fmt(b0), fmt(b1), fmt(b1 - b0, "%+.3f"),
             fmt(cell("perplexity", l, "ppl", false), "%.2f"),
             fmt(cell("perplexity", l, "ppl", true), "%.2f")});
    }
    os_ << t.str();
  }

  void profile() {
    if (!c_.runs("profile")) return;
    const json p = read_json(dir_, "profile/profile.json");
    os_ << "## Profile of a training step\n\n";
    if (!p.is_object()) {
      os_ << "Not run yet.\n\n";
      return;
    }
    const json& shares = p["shares"];
    os_ << "`moegrad profile` on " << p.value("device", "") << ", the base model's shape, "
        << p.value("tokens_per_step", int64_t(0)) << " tokens per step (profile/profile.txt, "
        << "profile.json, trace.json for Perfetto): step " << fmt(number_at(p, "step_ms"), "%.1f")
        << " ms, of which the ops account for " << fmt(100 * number_at(p, "ops_share_of_step"), "%.1f")
        << "%; profiler overhead " << fmt(100 * number_at(p, "overhead"), "%.1f") << "%. Share of "
        << "the step: **MoE layers " << fmt(100 * number_at(shares, "moe"), "%.1f") << "%, attention "
        << fmt(100 * number_at(shares, "attention"), "%.1f") << "%, the rest "
        << fmt(100 * number_at(shares, "rest"), "%.1f") << "%**.\n\n";
    Table t({"op", "calls", "ms per step", "share", "GFLOP/s", "GB/s"});
    size_t n = 0;
    for (const json& row : p["by_op"]) {
      if (n++ == 10) break;
      t.row({row.value("key", ""), fmt(number_at(row, "calls"), "%.0f"),
             fmt(number_at(row, "ms_per_step"), "%.2f"), fmt(100 * number_at(row, "share"), "%.1f%%"),
             fmt(number_at(row, "gflops"), "%.1f"), fmt(number_at(row, "gbps"), "%.1f")});
    }
    os_ << "The top ops:\n\n" << t.str();
    if (p.contains("memory")) {
      const json& mem = p["memory"];
      std::string parts;
      for (const auto& [k, v] : mem.items())
        if (v.is_object())
          parts += (parts.empty() ? "" : ", ") + k + " " +
                   fmt(number_at(v, "at_peak_bytes") / 1048576.0, "%.1f") + " MiB";
      os_ << "Peak memory " << fmt(number_at(mem, "peak_total_bytes") / 1048576.0, "%.1f")
          << " MiB; at that moment " << parts << ".\n\n";
    }
  }

  const ReportInputs& in_;
  const train::PipelineConfig& c_;
  fs::path dir_;
  std::map<std::string, json> results_;
  std::ostringstream os_;
};

}  // namespace

std::string pipeline_report(const ReportInputs& in) { return Report(in).str(); }

}  // namespace moegrad::app
