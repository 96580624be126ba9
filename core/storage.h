// Reference-counted memory block that tensors view, and the allocators that provide it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "core/device.h"

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
};
MemoryStats memory_stats(Device device);
// Starts a new high-water mark at the current usage.
void reset_peak_memory(Device device);

class Storage {
 public:
  // Allocates `nbytes` on `device`.
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

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;
  std::function<void()> release_;
};

}  // namespace moegrad
