#include "train/profile.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <regex>
#include <sstream>

#include "core/random.h"
#include "train/benchmark.h"

namespace moegrad::train {
namespace {

using profiler::Event;
using profiler::Kind;
using json = nlohmann::json;

// Bytes read plus written per second by a copy of 64 MiB (past the caches, an H100's 50 MB L2
// included), the best of a few.
double measure_copy_gbps(Device device) {
  const int64_t n = int64_t(16) << 20;  // floats
  Generator gen(3);
  Tensor src = rand({n}, gen, DType::F32, device), dst = empty({n}, DType::F32, device);
  dst.copy_(src);
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    synchronize(device);
    const auto t0 = std::chrono::steady_clock::now();
    dst.copy_(src);
    synchronize(device);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * double(n) * 4.0 / best / 1e9;
}

// Work that accounts for the step without counting anything twice: ops not run by another op.
bool counted(const Event& e) { return e.kind == Kind::Op && !e.inside_op; }

struct Totals {
  int64_t calls = 0;
  double us = 0, flops = 0, bytes = 0;
};

json rows(const std::map<std::string, Totals>& groups, const ProfileRun& run, double step_us) {
  std::vector<std::pair<std::string, Totals>> sorted(groups.begin(), groups.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second.us > b.second.us; });
  json out = json::array();
  const double steps = double(run.steps);
  for (const auto& [key, t] : sorted) {
    const double seconds = t.us * 1e-6;
    const double gflops = seconds > 0 ? t.flops / seconds / 1e9 : 0.0;
    const double gbps = seconds > 0 ? t.bytes / seconds / 1e9 : 0.0;
    out.push_back({{"key", key},
                   {"calls", double(t.calls) / steps},
                   {"ms_per_step", t.us / steps / 1e3},
                   {"share", step_us > 0 ? t.us / steps / step_us : 0.0},
                   {"gflops", gflops},
                   {"gbps", gbps},
                   {"of_peak_gflops", run.peak_gflops > 0 ? gflops / run.peak_gflops : 0.0},
                   {"of_peak_gbps", run.peak_gbps > 0 ? gbps / run.peak_gbps : 0.0}});
  }
  return out;
}

void add(Totals& t, const Event& e) {
  ++t.calls;
  t.us += e.duration_us;
  t.flops += e.flops;
  t.bytes += e.bytes;
}

std::string fold_layers(const std::string& module) {
  static const std::regex layer(R"(\.layers\.\d+)");
  return std::regex_replace(module, layer, ".layers.*");
}

json experts(const ProfileRun& run) {
  std::map<std::string, std::vector<int64_t>> tokens;
  std::map<std::string, Totals> gemms;
  for (const Event& e : run.events) {
    if (e.kind == Kind::Tokens) {
      std::vector<int64_t>& t = tokens[e.module];
      t.resize(std::max(t.size(), e.expert_tokens.size()), 0);
      for (size_t i = 0; i < e.expert_tokens.size(); ++i) t[i] += e.expert_tokens[i];
    } else if (counted(e) && e.name == "grouped_matmul") {
      add(gemms[e.module], e);
    }
  }
  json out = json::array();
  for (const auto& [module, t] : tokens) {
    int64_t total = 0;
    for (int64_t n : t) total += n;
    const Totals& g = gemms[module];
    for (size_t i = 0; i < t.size(); ++i) {
      const double share = total > 0 ? double(t[i]) / double(total) : 0.0;
      const double us = g.us * share, flops = g.flops * share;
      out.push_back({{"module", module},
                     {"expert", i},
                     {"tokens", double(t[i]) / double(run.steps)},
                     {"ms_per_step_estimated", us / double(run.steps) / 1e3},
                     {"gflops", us > 0 ? flops / (us * 1e-6) / 1e9 : 0.0}});
    }
  }
  return out;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

ProfileRun run_profile(const TrainConfig& config, int64_t steps, int64_t warmup) {
  MOEGRAD_CHECK(steps > 0 && warmup >= 0, "profile: steps must be positive and warmup >= 0");
  SyntheticTraining training(config);
  training.model().name_for_profiler("");
  for (int64_t i = 0; i < warmup; ++i) training.step();
  ProfileRun run;
  run.device = training.device();
  run.precision = config.train.precision;
  run.steps = steps;
  run.tokens_per_step = training.tokens_per_step();
  // Unprofiled and profiled steps alternate, so a machine that slows down or speeds up
  // during the run (other work, clocks) shifts both medians alike and the overhead stays fair.
  profiler::start();
  std::vector<double> profiled, unprofiled;
  for (int64_t i = 0; i < steps; ++i) {
    profiler::pause();
    unprofiled.push_back(training.median_step_seconds(1));
    profiler::resume();
    synchronize(run.device);
    const auto t0 = std::chrono::steady_clock::now();
    {
      const profiler::Scope step(Kind::Step, "step", Device::cpu());
      training.step();
      synchronize(run.device);
    }
    profiled.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  run.events = profiler::stop();
  for (std::vector<double>* times : {&profiled, &unprofiled}) std::sort(times->begin(), times->end());
  run.profiled_step_s = profiled[profiled.size() / 2];
  run.unprofiled_step_s = unprofiled[unprofiled.size() / 2];
  run.memory = memory_report(run.device);
  run.peak_gflops =
      measure_gemm_gflops(run.device, config.train.dtype(), run.device.is_cuda() ? 4096 : 1024);
  run.peak_gbps = measure_copy_gbps(run.device);
  return run;
}

json profile_summary(const ProfileRun& run) {
  std::map<std::string, Totals> by_op, by_module, by_phase;
  std::map<std::string, double> phase_wall_us;
  double op_us = 0, step_us = 0, moe_us = 0, attention_us = 0;
  for (const Event& e : run.events) {
    if (e.kind == Kind::Step) step_us += e.duration_us;
    if (e.kind == Kind::Phase) phase_wall_us[e.name] += e.duration_us;
    if (!counted(e)) continue;
    op_us += e.duration_us;
    if (e.module.find(".mlp") != std::string::npos) moe_us += e.duration_us;
    if (e.module.find(".self_attn") != std::string::npos) attention_us += e.duration_us;
    const std::string phase = profiler::phase_name(e.phase);
    add(by_op[phase.empty() ? e.name : e.name + " (" + phase + ")"], e);
    add(by_module[e.module.empty() ? "(outside modules, " + (phase.empty() ? "no phase" : phase) + ")"
                                   : fold_layers(e.module)],
        e);
    add(by_phase[phase.empty() ? "(no phase)" : phase], e);
  }
  const double steps = double(run.steps);
  const double step_per = step_us / steps;
  json memory = json::object();
  for (size_t c = 0; c < kMemoryCategories; ++c)
    memory[memory_category_name(MemoryCategory(c))] = {{"peak_bytes", run.memory.peak[c]},
                                                       {"at_peak_bytes", run.memory.at_peak[c]}};
  memory["peak_total_bytes"] = run.memory.peak_total;
  json phase_wall = json::object();
  for (const auto& [phase, us] : phase_wall_us) phase_wall[phase] = us / steps / 1e3;
  return {{"device", run.device.str()},
          {"precision", run.precision},
          {"steps", run.steps},
          {"tokens_per_step", run.tokens_per_step},
          {"step_ms", step_per / 1e3},
          {"unprofiled_step_ms", run.unprofiled_step_s * 1e3},
          {"profiled_step_ms_median", run.profiled_step_s * 1e3},
          {"overhead", run.unprofiled_step_s > 0
                           ? run.profiled_step_s / run.unprofiled_step_s - 1.0
                           : 0.0},
          {"ops_ms_per_step", op_us / steps / 1e3},
          {"unaccounted_ms_per_step", (step_us - op_us) / steps / 1e3},
          {"ops_share_of_step", step_us > 0 ? op_us / step_us : 0.0},
          {"shares", {{"moe", step_us > 0 ? moe_us / step_us : 0.0},
                      {"attention", step_us > 0 ? attention_us / step_us : 0.0},
                      {"rest", step_us > 0 ? (op_us - moe_us - attention_us) / step_us : 0.0}}},
          {"peak_gflops", run.peak_gflops},
          {"peak_gbps", run.peak_gbps},
          {"by_op", rows(by_op, run, step_per)},
          {"by_module", rows(by_module, run, step_per)},
          {"by_phase", rows(by_phase, run, step_per)},
          {"phase_host_ms_per_step", phase_wall},
          {"experts", experts(run)},
          {"memory", memory}};
}

std::string profile_table(const json& s, size_t top) {
  std::ostringstream os;
  os << "profile on " << s["device"].get<std::string>() << ": " << s["steps"] << " steps of "
     << s["tokens_per_step"] << " tokens\n"
     << "step " << fixed(s["step_ms"], 2) << " ms";
  if (s["unprofiled_step_ms"].get<double>() > 0)
    os << " (without the profiler " << fixed(s["unprofiled_step_ms"], 2) << " ms, overhead "
       << fixed(100 * s["overhead"].get<double>(), 1) << "%)";
  os << "; ops " << fixed(s["ops_ms_per_step"], 2) << " ms = "
     << fixed(100 * s["ops_share_of_step"].get<double>(), 1) << "% of the step, unaccounted "
     << fixed(s["unaccounted_ms_per_step"], 2) << " ms\n";
  if (s["peak_gflops"].get<double>() > 0)
    os << "peaks of this device, same run: " << s.value("precision", "f32") << " GEMM "
       << fixed(s["peak_gflops"], 0)
       << " GFLOP/s, copy " << fixed(s["peak_gbps"], 1) << " GB/s\n";
  os << "share of the step: MoE layers " << fixed(100 * s["shares"]["moe"].get<double>(), 1)
     << "%, attention " << fixed(100 * s["shares"]["attention"].get<double>(), 1) << "%, the rest "
     << fixed(100 * s["shares"]["rest"].get<double>(), 1) << "%\n";
  os << "host time per step by phase (on a GPU the host runs ahead of the device):";
  for (const auto& [phase, ms] : s["phase_host_ms_per_step"].items())
    os << " " << phase << " " << fixed(ms.get<double>(), 2) << " ms";
  os << "\n";
  for (const char* table : {"by_phase", "by_module", "by_op"}) {
    os << "\n" << table << "\n";
    char line[256];
    std::snprintf(line, sizeof line, "%-52s %8s %10s %7s %10s %8s\n", "", "calls", "ms/step",
                  "share", "GFLOP/s", "GB/s");
    os << line;
    size_t n = 0;
    for (const json& r : s[table]) {
      if (n++ == top) break;
      std::snprintf(line, sizeof line, "%-52s %8.1f %10.3f %6.1f%% %10.1f %8.1f\n",
                    r["key"].get<std::string>().substr(0, 52).c_str(), r["calls"].get<double>(),
                    r["ms_per_step"].get<double>(), 100 * r["share"].get<double>(),
                    r["gflops"].get<double>(), r["gbps"].get<double>());
      os << line;
    }
  }
  if (!s["experts"].empty()) {
    os << "\nexperts (tokens per step as routed; time split from the layer's grouped GEMMs)\n";
    std::vector<json> rows(s["experts"].begin(), s["experts"].end());
    std::stable_sort(rows.begin(), rows.end(), [](const json& a, const json& b) {
      return a["tokens"].get<double>() > b["tokens"].get<double>();
    });
    char line[256];
    for (size_t i = 0; i < rows.size() && i < top; ++i) {
      std::snprintf(line, sizeof line, "%-40s expert %4d %10.1f tokens %9.3f ms %10.1f GFLOP/s\n",
                    rows[i]["module"].get<std::string>().c_str(), rows[i]["expert"].get<int>(),
                    rows[i]["tokens"].get<double>(),
                    rows[i]["ms_per_step_estimated"].get<double>(),
                    rows[i]["gflops"].get<double>());
      os << line;
    }
  }
  os << "\nmemory peak " << memory_breakdown([&] {
    std::array<int64_t, kMemoryCategories> at{};
    for (size_t c = 0; c < kMemoryCategories; ++c)
      at[c] = s["memory"][memory_category_name(MemoryCategory(c))]["at_peak_bytes"];
    return at;
  }()) << "\n";
  return os.str();
}

json chrome_trace(const std::vector<Event>& events) {
  json trace = json::array();
  std::map<int, bool> gpus;
  for (const Event& e : events) {
    const int pid = e.device.is_cuda() ? 1 + e.device.index : 0;
    if (e.device.is_cuda()) gpus[e.device.index] = true;
    json args = {{"module", e.module}, {"phase", profiler::phase_name(e.phase)}};
    if (e.flops > 0) args["flops"] = e.flops;
    if (e.bytes > 0) args["bytes"] = e.bytes;
    if (e.kind == Kind::Tokens) {
      args["tokens"] = e.expert_tokens;
      trace.push_back({{"name", e.name}, {"cat", "tokens"}, {"ph", "i"}, {"s", "t"},
                       {"ts", e.start_us}, {"pid", 0}, {"tid", e.thread}, {"args", args}});
      continue;
    }
    trace.push_back({{"name", e.name}, {"cat", profiler::kind_name(e.kind)}, {"ph", "X"},
                     {"ts", e.start_us}, {"dur", e.duration_us}, {"pid", pid},
                     {"tid", e.device.is_cuda() ? 0 : e.thread}, {"args", args}});
    if (e.kind == Kind::Op)
      trace.push_back({{"name", "memory " + e.device.str()}, {"ph", "C"},
                       {"ts", e.start_us + e.duration_us}, {"pid", pid},
                       {"args", {{"bytes", e.memory_bytes}}}});
  }
  trace.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", 0},
                   {"args", {{"name", "host"}}}});
  for (const auto& [index, used] : gpus)
    trace.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", 1 + index},
                     {"args", {{"name", "cuda:" + std::to_string(index) + " (moegrad's stream)"}}}});
  return {{"traceEvents", trace}, {"displayTimeUnit", "ms"}};
}

}  // namespace moegrad::train
