// The op-level profiler. Off by default, and then a scope costs one relaxed atomic load. While a
// profile is recording, every op dispatched to a backend (MOEGRAD_DISPATCH), every backward
// node, and every module and phase scope records an event: its wall time (the host clock on
// the CPU; CUDA events on a GPU, read back only when the profile is collected, so no op waits
// for the GPU), its FLOPs and bytes from its operands' shapes, the module path and phase it ran
// under, its thread, and the device memory in use after it (the memory timeline). NVTX ranges
// mark the same scopes on a GPU, so Nsight Systems shows the same structure.
#pragma once
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/device.h"

namespace moegrad::profiler {

enum class Phase : uint8_t { None, Forward, Backward, Optimizer, Data, Communication };
const char* phase_name(Phase phase);  // "forward", ...; "" for None

// Tokens: an instant that carries expert_tokens.
enum class Kind : uint8_t { Op, Backward, Module, Phase, Step, Tokens };
const char* kind_name(Kind kind);  // "op", "backward", "module", "phase", "step", "tokens"

struct Event {
  Kind kind = Kind::Op;
  std::string name;    // "matmul", "linear.backward", a module's path, "forward", "step"
  std::string module;  // the innermost module path it ran under ("" outside any)
  Phase phase = Phase::None;
  Device device = Device::cpu();  // where its work ran (a GPU op's time is the GPU's)
  int thread = 0;                 // a small index per host thread, in order of first use
  int depth = 0;                  // nesting on its thread (0: outermost)
  bool inside_op = false;         // run by another op (counted in that op's time)
  double start_us = 0;            // since the profile started
  double duration_us = 0;
  double flops = 0, bytes = 0;
  int64_t memory_bytes = 0;           // the device's bytes in use when it ended
  std::vector<int64_t> expert_tokens;  // an MoE layer's tokens per expert (record_expert_tokens)
};

// What an op computes and moves, from its operands' shapes.
struct Cost {
  double flops = 0, bytes = 0;
};

namespace detail {
extern std::atomic<bool> recording;
}
inline bool enabled() { return detail::recording.load(std::memory_order_relaxed); }

// Starts recording (clearing earlier events); modules named by name_module keep their names.
void start();
// Stops recording and returns the events in start order, GPU times resolved (this waits for
// the GPUs that ran profiled work).
std::vector<Event> stop();
// Within a profile: work between pause and resume is not recorded (runs as with the profiler
// off), so profiled and unprofiled steps can alternate.
void pause();
void resume();

// The dotted path reported for a module object (nn's Module registers a model's tree).
void name_module(const void* module, const std::string& path);

// The scopes: each records one event from construction to destruction when a profile is
// recording, nothing otherwise.
class Scope {
 public:
  Scope(Kind kind, std::string_view name, Device device, Cost cost = {});
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  int64_t index_ = -1;  // the event's slot; -1 when not recording
  uint64_t session_ = 0;
  bool is_op_ = false;
};

// Everything run inside is attributed to `module` (a pointer named by name_module).
class ModuleScope {
 public:
  explicit ModuleScope(const void* module);
  ~ModuleScope();
  ModuleScope(const ModuleScope&) = delete;
  ModuleScope& operator=(const ModuleScope&) = delete;

 private:
  std::optional<Scope> scope_;  // engaged only while recording
  int previous_ = -1;           // the innermost module before this one
};

class PhaseScope {
 public:
  explicit PhaseScope(Phase phase);
  ~PhaseScope();
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

 private:
  std::optional<Scope> scope_;
  Phase previous_ = Phase::None;
};

// The innermost module of this thread, as an id a backward node keeps so its backward is
// attributed to the module whose forward made it (-1: none), and a scope that restores it.
int current_module();
class ModuleIdScope {
 public:
  explicit ModuleIdScope(int module);
  ~ModuleIdScope();
  ModuleIdScope(const ModuleIdScope&) = delete;
  ModuleIdScope& operator=(const ModuleIdScope&) = delete;

 private:
  int previous_ = -1;
};

// Adds what an op's operand shapes do not tell (attention's FLOPs: its operands are q, k, v,
// not the T x T products) to the next op named `name` this thread dispatches (the copies that
// make its operands ready run first).
void add_to_next_op(std::string_view name, Cost cost);

// Records the tokens each expert of the current module (an MoE layer's experts) received.
void record_expert_tokens(const std::vector<int64_t>& tokens);

}  // namespace moegrad::profiler
