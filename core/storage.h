// Reference-counted memory block that tensors view, and the allocators that provide it.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/device.h"
#include "core/error.h"

namespace moegrad {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
};

// The host allocator (64-byte aligned) or the CUDA caching allocator of the device.
Allocator& allocator_for(Device device);

// Bytes that tensors hold on a device through its allocator: for the host, what the host
// allocator handed out and has not taken back, each block rounded up to its alignment
// (memory-mapped storages are not counted); for a CUDA device, the caching allocator's
// allocated bytes (zeros in a build without CUDA).
struct MemoryStats {
  int64_t current_bytes = 0;
  int64_t peak_bytes = 0;  // high-water mark of current_bytes since the last reset
  // CUDA's caching allocator since the last reset (0 on the CPU): blocks asked of the driver
  // (cudaMalloc: slow; a steady training loop should reuse its blocks and ask for none) and
  // returns of the whole cache to the driver after a failed cudaMalloc (a device
  // synchronisation each).
  int64_t driver_allocations = 0;
  int64_t cache_releases = 0;
};
MemoryStats memory_stats(Device device);
// Starts a new high-water mark at the current usage.
void reset_peak_memory(Device device);

// What a storage holds, for the memory report and out-of-memory messages. A new storage takes
// the category of the innermost MemoryCategoryScope of its thread (activations outside any:
// everything a forward or backward pass makes); set_category re-files one whose role is known
// later (a module's parameters are weights). Workspace is an op's scratch: what it allocates
// for itself (input copies, partial sums, address tables) and lets go before it returns.
enum class MemoryCategory : uint8_t { Weights, Gradients, OptimizerState, Activations, Workspace };
constexpr size_t kMemoryCategories = 5;
const char* memory_category_name(MemoryCategory category);  // "weights", "optimizer state", ...

class MemoryCategoryScope {
 public:
  explicit MemoryCategoryScope(MemoryCategory category);
  ~MemoryCategoryScope();
  MemoryCategoryScope(const MemoryCategoryScope&) = delete;
  MemoryCategoryScope& operator=(const MemoryCategoryScope&) = delete;

 private:
  MemoryCategory previous_;
};

// Bytes of the storages moegrad allocated on a device (as asked for, before an allocator's
// rounding; memory-mapped storages are not counted), by category.
struct MemoryReport {
  std::array<int64_t, kMemoryCategories> current{};  // now
  std::array<int64_t, kMemoryCategories> peak{};     // each category's own high-water mark
  int64_t peak_total = 0;                            // high-water mark of the sum
  std::array<int64_t, kMemoryCategories> at_peak{};  // the categories when the sum peaked
  int64_t limit = 0;                                 // set_memory_limit's, 0 for none
  int64_t total() const;
};
MemoryReport memory_report(Device device);
// "12.5 GiB (weights 4.0 GiB, gradients 0.3 GiB, optimizer state 0.6 GiB, activations 7.5 GiB,
// workspace 0.1 GiB)"
std::string memory_breakdown(const std::array<int64_t, kMemoryCategories>& bytes);

// Makes any allocation that would take the storages on `device` past `bytes` fail with
// OutOfMemory, as a smaller device would (0 lifts the limit): whether a run fits a given
// memory can be tried on a larger one.
void set_memory_limit(Device device, int64_t bytes);

// An allocation failed: the device (or the limit) has no room for it. The message names the
// request, its category and what is in use by category.
class OutOfMemory : public Error {
 public:
  using Error::Error;
};

class Storage {
 public:
  // Allocates `nbytes` on `device`; throws OutOfMemory when there is no room.
  Storage(size_t nbytes, Device device);
  // Wraps memory owned elsewhere (a memory-mapped file, say); `release` runs when the last
  // tensor viewing it goes away.
  Storage(void* data, size_t nbytes, Device device, std::function<void()> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  MemoryCategory category() const { return category_; }
  void set_category(MemoryCategory category);

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;
  std::function<void()> release_;
  MemoryCategory category_ = MemoryCategory::Activations;
};

}  // namespace moegrad
