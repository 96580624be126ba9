#include "core/profiler.h"

#include <chrono>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/storage.h"

#ifdef MOEGRAD_WITH_CUDA
#include "core/cuda/profiler_marks.h"
#endif

namespace moegrad::profiler {

namespace detail {
std::atomic<bool> recording{false};
}

namespace {

using Clock = std::chrono::steady_clock;

// A GPU event's two marks; its times are read back when the profile stops.
struct GpuMarks {
  void* start = nullptr;
  void* stop = nullptr;
};

// The first mark of each GPU in a profile and the host time it was recorded at: GPU times are
// placed on the host's time axis through it.
struct GpuReference {
  void* mark = nullptr;
  double host_us = 0;
};

struct Profile {
  std::mutex mu;
  uint64_t session = 0;
  Clock::time_point t0;
  std::vector<Event> events;
  std::vector<GpuMarks> marks;  // one per event
  std::map<int, GpuReference> gpu_reference;
  std::unordered_map<const void*, int> module_ids;
  std::vector<std::string> module_names;
  int threads = 0;
};

Profile& profile() {
  static Profile p;
  return p;
}

struct ThreadState {
  int thread = -1;
  int depth = 0;
  int ops = 0;  // ops open on this thread
  std::string next_op;  // add_to_next_op's name and cost
  Cost next_op_cost;
  int module = -1;
  Phase phase = Phase::None;
};
thread_local ThreadState tls;

double now_us(const Profile& p) {
  return std::chrono::duration<double, std::micro>(Clock::now() - p.t0).count();
}

// Adds an event under the profile's lock and returns its slot.
int64_t open_event(Profile& p, Kind kind, std::string_view name, Device device, Cost cost) {
  if (tls.thread < 0) tls.thread = p.threads++;
  Event e;
  e.kind = kind;
  e.name = std::string(name);
  if (tls.module >= 0 && size_t(tls.module) < p.module_names.size())
    e.module = p.module_names[size_t(tls.module)];
  e.phase = tls.phase;
  e.device = device;
  e.thread = tls.thread;
  e.depth = tls.depth;
  e.inside_op = tls.ops > 0;
  e.start_us = now_us(p);
  e.flops = cost.flops;
  e.bytes = cost.bytes;
  if (kind == Kind::Op && !tls.next_op.empty() && tls.next_op == name) {
    e.flops += tls.next_op_cost.flops;
    e.bytes += tls.next_op_cost.bytes;
    tls.next_op.clear();
  }
  GpuMarks m;
#ifdef MOEGRAD_WITH_CUDA
  if (device.is_cuda()) {
    auto [ref, fresh] = p.gpu_reference.try_emplace(device.index);
    if (fresh) ref->second = {cuda::profiler_mark(device.index), e.start_us};
    m.start = cuda::profiler_mark(device.index);
  }
  cuda::nvtx_push(e.name.c_str());
#endif
  p.events.push_back(std::move(e));
  p.marks.push_back(m);
  return int64_t(p.events.size()) - 1;
}

void close_event(Profile& p, int64_t index) {
  Event& e = p.events[size_t(index)];
  e.duration_us = now_us(p) - e.start_us;
  e.memory_bytes = memory_stats(e.device).current_bytes;
#ifdef MOEGRAD_WITH_CUDA
  if (e.device.is_cuda()) p.marks[size_t(index)].stop = cuda::profiler_mark(e.device.index);
  cuda::nvtx_pop();
#endif
}

}  // namespace

const char* phase_name(Phase phase) {
  switch (phase) {
    case Phase::None: return "";
    case Phase::Forward: return "forward";
    case Phase::Backward: return "backward";
    case Phase::Optimizer: return "optimizer";
    case Phase::Data: return "data";
    case Phase::Communication: return "communication";
  }
  return "";
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::Op: return "op";
    case Kind::Backward: return "backward";
    case Kind::Module: return "module";
    case Kind::Phase: return "phase";
    case Kind::Step: return "step";
    case Kind::Tokens: return "tokens";
  }
  return "";
}

void start() {
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mu);
  ++p.session;
  p.events.clear();
  p.marks.clear();
  p.gpu_reference.clear();
  p.t0 = Clock::now();
#ifdef MOEGRAD_WITH_CUDA
  cuda::profiler_release_marks();
#endif
  detail::recording.store(true);
}

std::vector<Event> stop() {
  Profile& p = profile();
  detail::recording.store(false);
  std::lock_guard<std::mutex> lock(p.mu);
  ++p.session;
#ifdef MOEGRAD_WITH_CUDA
  for (size_t i = 0; i < p.events.size(); ++i) {
    Event& e = p.events[i];
    const GpuMarks& m = p.marks[i];
    if (!m.start || !m.stop) continue;
    const GpuReference& ref = p.gpu_reference.at(e.device.index);
    e.start_us = ref.host_us + 1e3 * cuda::profiler_elapsed_ms(ref.mark, m.start);
    e.duration_us = 1e3 * cuda::profiler_elapsed_ms(m.start, m.stop);
  }
  cuda::profiler_release_marks();
#endif
  p.marks.clear();
  return std::move(p.events);
}

void pause() { detail::recording.store(false); }

void resume() {
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mu);
  detail::recording.store(true);
}

void name_module(const void* module, const std::string& path) {
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mu);
  auto [it, fresh] = p.module_ids.try_emplace(module, int(p.module_names.size()));
  if (fresh) {
    p.module_names.push_back(path);
  } else {
    p.module_names[size_t(it->second)] = path;
  }
}

Scope::Scope(Kind kind, std::string_view name, Device device, Cost cost) {
  if (!enabled()) return;
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mu);
  if (!detail::recording.load()) return;
  index_ = open_event(p, kind, name, device, cost);
  session_ = p.session;
  is_op_ = kind == Kind::Op;
  ++tls.depth;
  tls.ops += is_op_;
}

Scope::~Scope() {
  if (index_ < 0) return;
  --tls.depth;
  tls.ops -= is_op_;
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mu);
  if (p.session == session_) close_event(p, index_);
}

ModuleScope::ModuleScope(const void* module) {
  if (!enabled()) return;
  int id = -1;
  std::string name;
  {
    Profile& p = profile();
    std::lock_guard<std::mutex> lock(p.mu);
    auto it = p.module_ids.find(module);
    if (it == p.module_ids.end()) return;  // a module outside the named tree
    id = it->second;
    name = p.module_names[size_t(id)];
  }
  previous_ = tls.module;
  tls.module = id;
  scope_.emplace(Kind::Module, name, Device::cpu());
}

ModuleScope::~ModuleScope() {
  if (!scope_) return;
  scope_.reset();
  tls.module = previous_;
}

PhaseScope::PhaseScope(Phase phase) {
  if (!enabled()) return;
  previous_ = tls.phase;
  tls.phase = phase;
  scope_.emplace(Kind::Phase, phase_name(phase), Device::cpu());
}

PhaseScope::~PhaseScope() {
  if (!scope_) return;
  scope_.reset();
  tls.phase = previous_;
}

int current_module() { return tls.module; }

void add_to_next_op(std::string_view name, Cost cost) {
  if (!enabled()) return;
  tls.next_op = std::string(name);
  tls.next_op_cost = cost;
}

ModuleIdScope::ModuleIdScope(int module) : previous_(tls.module) { tls.module = module; }
ModuleIdScope::~ModuleIdScope() { tls.module = previous_; }

void record_expert_tokens(const std::vector<int64_t>& tokens) {
  if (!enabled()) return;
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mu);
  if (!detail::recording.load()) return;
  const int64_t index = open_event(p, Kind::Tokens, "expert_tokens", Device::cpu(), {});
  p.events[size_t(index)].expert_tokens = tokens;
#ifdef MOEGRAD_WITH_CUDA
  cuda::nvtx_pop();
#endif
}

}  // namespace moegrad::profiler
