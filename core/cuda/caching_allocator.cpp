#include "core/cuda/caching_allocator.h"

#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/cuda/runtime.h"
#include "core/error.h"

namespace moegrad::cuda {
namespace {

// Sizes are rounded up so that slightly different requests share blocks.
size_t round_size(size_t n) {
  constexpr size_t kSmall = 512, kLarge = size_t(2) << 20;
  return n < kLarge ? (n + kSmall - 1) / kSmall * kSmall : (n + kLarge - 1) / kLarge * kLarge;
}

class CachingAllocator final : public Allocator {
 public:
  explicit CachingAllocator(int device) : device_(device) {}

  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    size_t size = round_size(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    // Reuse a cached block no more than twice the request, so big blocks are not wasted on
    // small tensors.
    auto it = free_.lower_bound(size);
    if (it != free_.end() && it->first <= 2 * size) {
      void* p = it->second;
      size_t block = it->first;
      free_.erase(it);
      return hand_out(p, block);
    }
    set_device(device_);
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_cached();
      err = cudaMalloc(&p, size);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      throw OutOfMemory(detail::concat(
          "cudaMalloc of ", size, " bytes failed with the allocator's cache returned to the driver (",
          stats_.reserved, " bytes still reserved: ", stats_.allocated, " held by tensors)"));
    }
    MOEGRAD_CUDA_CHECK(err);
    stats_.reserved += size;
    ++stats_.driver_allocations;
    return hand_out(p, size);
  }

  void deallocate(void* ptr, size_t) override {
    if (!ptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(ptr);
    MOEGRAD_CHECK(it != live_.end(), "caching allocator: free of an unknown pointer");
    stats_.allocated -= it->second;
    free_.emplace(it->second, ptr);
    live_.erase(it);
  }

  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_allocated = stats_.allocated;
    stats_.driver_allocations = stats_.cache_releases = 0;
  }
  void empty() {
    std::lock_guard<std::mutex> lock(mu_);
    release_cached();
  }

 private:
  void* hand_out(void* p, size_t size) {
    live_[p] = size;
    stats_.allocated += size;
    stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
    return p;
  }
  void release_cached() {
    set_device(device_);
    // A freed block may still be read by queued kernels.
    MOEGRAD_CUDA_CHECK(cudaStreamSynchronize(stream(device_)));
    ++stats_.cache_releases;
    for (auto& [size, p] : free_) {
      MOEGRAD_CUDA_CHECK(cudaFree(p));
      stats_.reserved -= size;
    }
    free_.clear();
  }

  int device_;
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  std::unordered_map<void*, size_t> live_;
  MemoryStats stats_;
};

CachingAllocator& allocator(int device) {
  static std::mutex mu;
  // Never destroyed: tensors in static storage may be freed after main returns.
  static auto* allocators = new std::vector<std::unique_ptr<CachingAllocator>>();
  std::lock_guard<std::mutex> lock(mu);
  MOEGRAD_CHECK(device >= 0 && device < device_count(), "cuda:", device, " requested, but ",
                device_count(), " CUDA device(s) are present");
  if (allocators->empty()) allocators->resize(device_count());
  auto& a = (*allocators)[device];
  if (!a) a = std::make_unique<CachingAllocator>(device);
  return *a;
}

}  // namespace

Allocator& caching_allocator(int device) { return allocator(device); }
MemoryStats memory_stats(int device) { return allocator(device).stats(); }
void reset_peak_memory(int device) { allocator(device).reset_peak(); }
void empty_cache(int device) { allocator(device).empty(); }

}  // namespace moegrad::cuda
