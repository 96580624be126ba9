// The CUDA caching allocator: freed blocks are kept and reused instead of returned to the
// driver, because cudaMalloc/cudaFree synchronise the device.
#pragma once
#include <cstddef>

#include "core/storage.h"

namespace moegrad::cuda {

struct MemoryStats {
  size_t allocated = 0;       // bytes handed out and not yet freed
  size_t peak_allocated = 0;  // high-water mark of `allocated`
  size_t reserved = 0;        // bytes held from the driver (allocated + cached)
  // Since the last reset_peak_memory: blocks asked of the driver (cudaMalloc), and returns of
  // the whole cache to it (each a device synchronisation; the cache then starts empty).
  size_t driver_allocations = 0;
  size_t cache_releases = 0;
};

Allocator& caching_allocator(int device);
MemoryStats memory_stats(int device);
void reset_peak_memory(int device);
// Returns every cached (free) block to the driver.
void empty_cache(int device);

}  // namespace moegrad::cuda
